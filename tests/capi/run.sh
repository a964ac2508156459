#!/usr/bin/env bash
# The C API as a user gets it: `cmake --install` into a fresh prefix, a C
# program built against the installed tree with pkg-config (shared and
# static) and with find_package(rgemma), run on every reference fixture's
# greedy cases and compared with the reference tokens.
#   tests/capi/run.sh [BUILD_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
PREFIX="$(mktemp -d)"
trap 'rm -rf "$PREFIX"' EXIT
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
for f in bin/rgemma include/rgemma/rgemma.h lib/librgemma.so lib/librgemma.a lib/pkgconfig/rgemma.pc \
         lib/cmake/rgemma/rgemmaConfig.cmake; do
  [[ -e "$PREFIX/$f" ]] || { echo "capi: $f was not installed" >&2; exit 1; }
done
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
cc -std=gnu11 -Wall -Wextra -Werror -o "$PREFIX/greedy" "$ROOT/tests/capi/greedy.c" $(pkg-config --cflags --libs rgemma)
cc -std=gnu11 -Wall -Wextra -Werror -o "$PREFIX/greedy-static" "$ROOT/tests/capi/greedy.c" \
  $(pkg-config --cflags rgemma) "$PREFIX/lib/librgemma.a" $(pkg-config --libs-only-l --static rgemma | sed 's/-lrgemma//')
# find_package(rgemma) from a CMake project.
mkdir -p "$PREFIX/cmake-user"
cat >"$PREFIX/cmake-user/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(user C)
find_package(rgemma REQUIRED)
add_executable(greedy-cmake $ROOT/tests/capi/greedy.c)
target_link_libraries(greedy-cmake PRIVATE rgemma::rgemma_shared)
CMAKE
cmake -S "$PREFIX/cmake-user" -B "$PREFIX/cmake-user/build" -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null
cmake --build "$PREFIX/cmake-user/build" >/dev/null

fail=0
for dir in "$ROOT"/tests/data/fixtures/*/; do
  while IFS=$'\t' read -r prompt want; do
    n=$(wc -w <<<"$want")
    for exe in "$PREFIX/greedy" "$PREFIX/greedy-static" "$PREFIX/cmake-user/build/greedy-cmake"; do
      got=$(LD_LIBRARY_PATH="$PREFIX/lib" "$exe" "$dir" "$n" $prompt)
      if [[ "$got" != "$want" ]]; then
        echo "capi: $(basename "$dir") $(basename "$exe") prompt [$prompt]: got [$got], want [$want]" >&2
        fail=1
      fi
    done
  done < <(/usr/bin/python3 - "$dir" <<'PY'
import os, re, sys
sys.path.insert(0, os.path.join(os.environ.get("ROOT", "."), "tests", "tools"))
import st
exp = st.read(os.path.join(sys.argv[1], "expected.safetensors"))
for k in sorted(exp):
    m = re.fullmatch(r"gen_prompt\.(\d+)", k)
    if m:
        print(" ".join(map(str, exp[k].tolist())), " ".join(map(str, exp[f"gen_tokens.{m.group(1)}"].tolist())), sep="\t")
PY
)
done
[[ $fail -eq 0 ]] && echo "capi: installed tree ok (pkg-config shared + static, find_package); greedy equals the reference on every fixture"
exit $fail
