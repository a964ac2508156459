#!/usr/bin/env bash
# A/B of two rgemma builds on the same models, alternated in one run (this
# VM's memory speed and the load from other jobs drift within minutes, so
# only figures taken side by side compare). Each row is the median of the
# rounds; every figure is next to the peak the same `bench` run measured.
# "cpu" columns are per CPU-second the process used (bench's *_cpu_* fields,
# the peak likewise): they hold when other jobs share the cores, where wall
# figures do not (a build without them shows "-").
#   tools/ab_bench.sh OLD_BIN NEW_BIN [CASE ...]
# CASE is MODEL_DIR or MODEL_DIR:fast (bf16 weights, --precision fast).
# Default cases: models/cache/random-2b{,:fast,-q8,-q4,-q8_256,-q4_256}.
# Env: ROUNDS (2), PROMPT (512), GEN (64), REPS (3), BATCH (16), THREADS (0 = all).
# A build that cannot load a model (e.g. an older one and a new format) is
# shown as "-".
set -uo pipefail
[ $# -ge 2 ] || { sed -n 2,12p "$0"; exit 2; }
old=$1 new=$2; shift 2
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(models/cache/random-2b models/cache/random-2b:fast models/cache/random-2b-q8
                                  models/cache/random-2b-q4 models/cache/random-2b-q8_256 models/cache/random-2b-q4_256)
rounds=${ROUNDS:-2}
log=${LOG:-$(mktemp)}; [ -n "${LOG:-}" ] || trap 'rm -f "$log"' EXIT  # LOG=file keeps the JSON lines
for ((r = 1; r <= rounds; r++)); do
  for c in "${cases[@]}"; do
    model=${c%:fast}; extra=(); [ "$model" != "$c" ] && extra=(--precision fast)
    [ -d "$model" ] || { echo "skip $c: no $model" >&2; continue; }
    for which in old new; do
      bin=$old; [ $which = new ] && bin=$new
      out=$("$bin" bench -m "$model" --prompt-tokens "${PROMPT:-512}" --gen-tokens "${GEN:-64}" --reps "${REPS:-3}" \
            --batch "${BATCH:-16}" --threads "${THREADS:-0}" "${extra[@]}" --json 2>/dev/null | tail -1)
      echo "$c $which $r ${out:-{\}}" >> "$log"
      echo "round $r $c $which done" >&2
    done
  done
done
/usr/bin/python3 - "$log" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    case, which, _, js = line.split(" ", 3)
    rows.setdefault((case, which), []).append(json.loads(js))
def med(runs, key):
    v = [r[key] for r in runs if key in r]
    return statistics.median(v) if v else None
def f(x, fmt):
    return "-" if x is None else fmt % x
print("| case | build | load s | prefill tok/s | prefill / peak (peak) | prefill / peak, cpu (peak) | decode tok/s | decode / read bw | batch tok/s | batch x |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (case, which), runs in rows.items():
    kind = runs[0].get("prefill_peak_kind") if runs else None
    if kind is None:  # older builds: int8 for quantized weights, else f32
        kind = "int8" if any(r.get("weights_format", "").startswith("q") for r in runs) else "f32"
    key = {"int8": "measured_peak_int8_gops", "bf16": "measured_peak_bf16_gflops", "f32": "measured_peak_gflops"}[kind]
    cpu_key = {"int8": "measured_peak_int8_cpu_gops", "bf16": "measured_peak_bf16_cpu_gflops", "f32": "measured_peak_cpu_gflops"}[kind]
    unit = "GOP/s int8" if kind == "int8" else f"GFLOP/s {kind}"
    print(f"| {case} | {which} | {f(med(runs, 'load_s'), '%.2f')} | {f(med(runs, 'prefill_tok_s'), '%.1f')} "
          f"| {f(med(runs, 'prefill_fraction_of_peak'), '%.3f')} ({f(med(runs, key), '%.0f')} {unit}) "
          f"| {f(med(runs, 'prefill_cpu_fraction_of_peak'), '%.3f')} ({f(med(runs, cpu_key), '%.0f')}) "
          f"| {f(med(runs, 'decode_tok_s'), '%.2f')} | {f(med(runs, 'decode_fraction_of_bandwidth'), '%.2f')} "
          f"| {f(med(runs, 'batch_decode_tok_s'), '%.1f')} | {f(med(runs, 'batch_speedup'), '%.2f')} |")
PY
