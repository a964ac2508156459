#!/usr/bin/env bash
# End-to-end tests of `rgemma serve` with the official `openai` npm client.
#
#   tests/server/run.sh [BUILD_DIR]        (default: $RG_BUILD_DIR or ./build)
#
# Installs the test dependencies (npm install openai) into BUILD_DIR/server-tests,
# makes a small random model with the Gemma tokenizer there (rgemma init), starts
# three servers on free loopback ports:
#   text : the random model + tokenizer   (--parallel 8, text and chat)
#   tiny : fixture tests/data/fixtures/tiny (no tokenizer: token ids only, --parallel 8)
#   small: fixture tests/data/fixtures/small
# runs `node --test` on tests/server/*.test.mjs, then stops the servers with
# SIGTERM and checks that they exit cleanly. Needs node >= 20 and npm.
# Extra arguments after BUILD_DIR are passed to `node --test` (e.g. a file name).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-${RG_BUILD_DIR:-$ROOT/build}}"
shift || true
BUILD="$(cd "$BUILD" && pwd)"
BIN="$BUILD/rgemma"
WORK="$BUILD/server-tests"
[[ -x "$BIN" ]] || { echo "run.sh: $BIN not found (build first)" >&2; exit 1; }
command -v node >/dev/null || { echo "run.sh: node not found" >&2; exit 1; }

mkdir -p "$WORK"
cp "$ROOT"/tests/server/package.json "$ROOT"/tests/server/*.mjs "$WORK"/
if [[ ! -d "$WORK/node_modules/openai" ]] || [[ "$ROOT/tests/server/package.json" -nt "$WORK/node_modules/.rg-installed" ]]; then
  echo "run.sh: npm install (openai) in $WORK"
  (cd "$WORK" && npm install --no-audit --no-fund --loglevel=error)
  touch "$WORK/node_modules/.rg-installed"
fi

TEXT_MODEL="$WORK/model-text"
if [[ ! -f "$TEXT_MODEL/config.json" || "$BIN" -nt "$TEXT_MODEL/config.json" ]]; then
  rm -rf "$TEXT_MODEL"
  "$BIN" init --preset 2b --hidden-size 64 --num-heads 2 --num-layers 3 --window 16 --dtype bf16 --seed 3 \
    --tokenizer "$ROOT/models/tokenizer/tokenizer.model" --out "$TEXT_MODEL" >/dev/null
fi

PIDS=()
NAMES=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

start() {  # name model-dir extra-args...
  local name="$1" dir="$2"
  shift 2
  rm -f "$WORK/$name.port"
  "$BIN" serve -m "$dir" --host 127.0.0.1 --port 0 --port-file "$WORK/$name.port" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
}

start text "$TEXT_MODEL" --parallel 8 --max-queue 64 --max-body-bytes 65536 --max-prompt-tokens 512
start tiny "$ROOT/tests/data/fixtures/tiny" --parallel 8 --max-queue 64
start small "$ROOT/tests/data/fixtures/small" --parallel 4 --max-queue 64

port_of() {
  local f="$WORK/$1.port" i
  for i in $(seq 1 600); do
    [[ -s "$f" ]] && { cat "$f"; return 0; }
    sleep 0.1
  done
  echo "run.sh: server '$1' did not start; its log:" >&2
  cat "$WORK/$1.log" >&2
  return 1
}
export RG_TEXT_URL="http://127.0.0.1:$(port_of text)"
export RG_TINY_URL="http://127.0.0.1:$(port_of tiny)"
export RG_SMALL_URL="http://127.0.0.1:$(port_of small)"
export RGEMMA_BIN="$BIN"
export RG_FIXTURES="$ROOT/tests/data/fixtures"
export RG_TEXT_MODEL="$TEXT_MODEL"
echo "run.sh: text $RG_TEXT_URL  tiny $RG_TINY_URL  small $RG_SMALL_URL"

status=0
if [[ $# -gt 0 ]]; then
  (cd "$WORK" && node --test --test-concurrency=1 "$@") || status=$?
else
  (cd "$WORK" && node --test --test-concurrency=1 ./*.test.mjs) || status=$?
fi

# Graceful stop: SIGTERM must drain and exit 0.
for i in "${!PIDS[@]}"; do
  pid="${PIDS[$i]}"
  kill -TERM "$pid" 2>/dev/null || true
  rc=0
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: server '${NAMES[$i]}' did not exit 30 s after SIGTERM" >&2
    status=1
  else
    wait "$pid" || rc=$?
    if [[ $rc -ne 0 ]]; then
      echo "run.sh: server '${NAMES[$i]}' exited with status $rc; its log:" >&2
      tail -n 30 "$WORK/${NAMES[$i]}.log" >&2
      status=1
    fi
  fi
done
PIDS=()
if [[ $status -ne 0 ]]; then
  for n in "${NAMES[@]}"; do echo "--- tail of $WORK/$n.log" >&2; tail -n 15 "$WORK/$n.log" >&2; done
fi
exit $status
