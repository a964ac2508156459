#!/usr/bin/env bash
# The main job: build rgemma and stream a generation.
#   scripts/demo.sh                 random-weight model of the real 2B shape (made once, cached)
#   scripts/demo.sh MODEL_DIR ...   a real model directory downloaded from Hugging Face
# Extra arguments are passed to `rgemma generate`. stdout holds only the
# generated text; notes, timings and the command go to stderr.
# RG_DEMO_SMALL=1 uses a small random model (same steps: init -> tokenizer ->
# generate) instead of the 5.4 GB one; the test suite runs the demo that way.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh --target rgemma >/dev/null

model="${1:-}"
[ $# -gt 0 ] && shift
if [ -z "$model" ]; then
  if [ "${RG_DEMO_SMALL:-0}" = 1 ]; then
    model=models/cache/random-small
    shape=(--preset 2b --hidden-size 256 --num-heads 2 --num-layers 6 --window 64)
    what="a small random-weight model (RG_DEMO_SMALL=1)"
  else
    model=models/cache/random-2b
    shape=(--preset 2b)
    what="a random-weight model of the real RecurrentGemma-2B shape (5.4 GB, once)"
  fi
  if [ ! -f "$model/model.safetensors.index.json" ]; then
    echo "== creating $what in $model" >&2
    rm -rf "$model"
    build/rgemma init "${shape[@]}" --dtype bf16 --seed 1 --tokenizer models/tokenizer/tokenizer.model --out "$model"
  fi
  cat >&2 <<'MSG'
==========================================================================
 rgemma demo: the REAL RecurrentGemma-2B architecture and the real Gemma
 tokenizer, but RANDOM WEIGHTS, so the text below is meaningless. What it
 shows is the engine: loading, prefill, streaming decode, and its speed.
 To run a real model, download google/recurrentgemma-2b-it from Hugging
 Face and run:   scripts/demo.sh /path/to/recurrentgemma-2b-it
==========================================================================
MSG
fi
set -x
build/rgemma generate -m "$model" -p "The three most important ideas in computer science are" \
  -n 48 --temperature 0.8 --seed 42 "$@"
