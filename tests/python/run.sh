#!/usr/bin/env bash
# The Python package: pytest on the package built in BUILD/python (Debian's
# python3, numpy and pytest), then a fresh-machine check: `pip install .`
# into a new virtual environment (offline, Debian's setuptools through
# --system-site-packages, the native module from the existing CMake build)
# and `import rgemma` there.
#   tests/python/run.sh [BUILD_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
PY=/usr/bin/python3
[[ -f "$BUILD/python/rgemma/__init__.py" ]] || { echo "python: $BUILD/python/rgemma not built (cmake --build $BUILD --target _rgemma)" >&2; exit 1; }
PYTHONPATH="$BUILD/python" RGEMMA_BIN="$BUILD/rgemma" "$PY" -m pytest -q -p no:cacheprovider "$ROOT/tests/python"

VENV="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$VENV")"' EXIT
"$PY" -m venv --system-site-packages "$VENV"
(cd "$ROOT" && RGEMMA_BUILD_DIR="$BUILD" "$VENV/bin/pip" install --no-build-isolation --no-deps --no-index -q .)
# From elsewhere, so the source tree's python/ is not what gets imported.
(cd / && "$VENV/bin/python" - "$ROOT" <<'PY'
import os, sys
import rgemma
root = sys.argv[1]
sys.path.insert(0, os.path.join(root, "tests", "tools"))
import st  # the reference fixture's greedy tokens
d = os.path.join(root, "tests", "data", "fixtures", "tiny")
exp = st.read(os.path.join(d, "expected.safetensors"))
prompt, want = exp["gen_prompt.0"].tolist(), exp["gen_tokens.0"].tolist()
assert rgemma.Model(d).generate_tokens(prompt, len(want), temperature=0, ignore_eos=True) == want
print("python: pip install . into a new venv; import rgemma from", rgemma.__file__, "; greedy equals the reference")
PY
)
