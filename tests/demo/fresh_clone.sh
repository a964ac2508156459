#!/usr/bin/env bash
# Runs the README's main command (scripts/demo.sh) the way a new user does:
# in a fresh clone of this repository's HEAD, with no build/ and no
# models/cache/, then checks that text was streamed and the stats line was
# printed. RG_DEMO_SMALL=1 keeps it quick (a small random model; the steps
# init -> tokenizer -> generate are the demo's own).
#   tests/demo/fresh_clone.sh [WORK_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${1:-$(mktemp -d)}"
CLONE="$WORK/rgemma-clone"
rm -rf "$CLONE"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  git clone -q "$ROOT" "$CLONE"
  if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
    echo "fresh_clone.sh: note: uncommitted changes are not in the clone (it tests HEAD)"
  fi
else  # not a git checkout: copy the sources as a clone would have them
  mkdir -p "$CLONE"
  tar -C "$ROOT" --exclude='./build*' --exclude=./models/cache -cf - . | tar -C "$CLONE" -xf -
fi
cd "$CLONE"
for p in build models/cache; do
  [ ! -e "$p" ] || { echo "fresh_clone.sh: $p exists in a fresh clone (is it tracked?)" >&2; exit 1; }
done
status=0
RG_DEMO_SMALL=1 scripts/demo.sh >"$WORK/demo.out" 2>"$WORK/demo.err" || status=$?
fail() {
  echo "fresh_clone.sh: $*" >&2
  echo "--- stdout"; cat "$WORK/demo.out"; echo "--- stderr (tail)"; tail -n 30 "$WORK/demo.err"
  exit 1
}
[ $status -eq 0 ] || fail "scripts/demo.sh exited with status $status"
text=$(tr -d '\n' <"$WORK/demo.out")  # stdout is the generated text only
[ "${#text}" -ge 20 ] || fail "no generated text on stdout (${#text} characters)"
stats=$(grep '^\[stats\] prompt [0-9]* tok, prefill .* generated [1-9][0-9]* tok, decode .* tok/s' "$WORK/demo.err" || true)
[ -n "$stats" ] || fail "no stats line (with generated tokens) on stderr"
echo "fresh_clone.sh: ok: ${#text} characters streamed; $stats"
rm -rf "$CLONE"
