#!/usr/bin/env bash
# Accuracy of the bf16 / q8 / q4 weight formats against the f32 path:
# top-1 agreement and mean KL per token of `rgemma forward` logits, and whether
# greedy generation still equals the reference's tokens.
#   [FORMATS="bf16 q8 q4 q8_256 q4_256"] tools/quant_accuracy.sh [MODEL_DIR_WITH_expected.safetensors ...]
# Default: the reference fixtures in tests/data/fixtures, formats bf16 q8 q4.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/rgemma
dirs=("$@"); [ ${#dirs[@]} -eq 0 ] && dirs=(tests/data/fixtures/*/)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for d in "${dirs[@]}"; do
  d=${d%/}; name=$(basename "$d")
  tokens="$d/expected.safetensors"
  $bin forward -m "$d" --tokens "$tokens" --out "$tmp/$name-f32.safetensors"
  for fmt in ${FORMATS:-bf16 q8 q4}; do
    $bin quantize -m "$d" --to "$fmt" --out "$tmp/$name-$fmt" 2>/dev/null
    $bin forward -m "$tmp/$name-$fmt" --tokens "$tokens" --out "$tmp/$name-$fmt.safetensors"
    cmp=$(/usr/bin/python3 tools/compare_logits.py "$tmp/$name-f32.safetensors" "$tmp/$name-$fmt.safetensors")
    greedy=$(/usr/bin/python3 - "$tmp/$name-$fmt" "$tokens" "$bin" <<'PY'
import subprocess, sys, os
sys.path.insert(0, "tests/tools"); import st
model, tokens, binary = sys.argv[1:]
exp = st.read(tokens); ok = total = 0
for k in exp:
    if not k.startswith("gen_tokens."): continue
    i = k.split(".")[-1]; want = [int(t) for t in exp[k]]
    prompt = ",".join(str(int(t)) for t in exp[f"gen_prompt.{i}"])
    out = subprocess.run([binary, "generate", "-m", model, "--prompt-ids", prompt, "--max-tokens", str(len(want)),
                          "--temperature", "0", "--ignore-eos", "--print-ids", "-q"], capture_output=True, text=True).stdout.split()
    total += 1; ok += [int(x) for x in out] == want
print(f"greedy={ok}/{total}")
PY
)
    echo "$name $fmt $cmp $greedy"
  done
done
