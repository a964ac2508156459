#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. release build + all CTest suites (unit, model vs reference fixtures, CLI)
#   2. the reference-fixture contract check (../shared/tools/check_reference.py)
#   3. the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   4. libFuzzer on the untrusted-input parsers, bounded time
#   5. the HTTP server driven by the official openai npm package
#   6. 3 replicas sharing a Redis state store behind nginx
#   7. the Python package (pytest; pip install . into a new venv) and the C
#      API (cmake --install; a C program built with pkg-config / find_package)
#   8. the README's main command (scripts/demo.sh) in a fresh clone
# Env: RG_FUZZ_SECONDS (default 45 per target), RG_SKIP_ASAN=1, RG_SKIP_FUZZ=1.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || exit 1
jobs=$(nproc)
# ccache, for the release configuration only: the fresh-clone stage then
# rebuilds the CLI from cached objects (~3 s, not ~150 s). The clone lives
# under build-demo/ so both trees are below CCACHE_BASEDIR and their relative
# paths match; the sanitizer and fuzz builds are configured without it.
if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_DIR="$PWD/build-ccache" CCACHE_BASEDIR="$PWD" CCACHE_MAXSIZE=1G
fi
passed=0; failed=0; failures=()
step() {  # step NAME COMMAND...: runs a stage, records its result
  local name=$1; shift
  echo; echo "==== $name"
  local t0=$SECONDS
  if "$@"; then passed=$((passed + 1)); echo "==== $name: ok ($((SECONDS - t0)) s)"
  else failed=$((failed + 1)); failures+=("$name"); echo "==== $name: FAILED ($((SECONDS - t0)) s)"; fi
}

build_release() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$jobs"
}
ctest_release() { ctest --test-dir build --output-on-failure -j2 --timeout 900; }
contract_check() {
  local fixtures=(tests/data/fixtures/*/)
  [ -d ../shared/fixtures/reference ] && fixtures=(../shared/fixtures/reference/*/)
  local checker=tests/tools/check_reference.py
  [ -f ../shared/tools/check_reference.py ] && checker=../shared/tools/check_reference.py
  /usr/bin/python3 "$checker" build/rgemma "${fixtures[@]}"
}
asan() {
  # -O1, with the CLI, the server and most test files at -O0 (CMakeLists.txt):
  # quick to compile, still fast enough to run every test.
  env -u CMAKE_CXX_COMPILER_LAUNCHER cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" -DRG_SANITIZE=ON -DRG_PYTHON=OFF >/dev/null &&
    cmake --build build-asan -j"$jobs" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build-asan --output-on-failure -j2 --timeout 1800
}
fuzz() {
  CC=clang CXX=clang++ env -u CMAKE_CXX_COMPILER_LAUNCHER cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRG_FUZZ=ON -DRG_PYTHON=OFF >/dev/null || return 1
  local targets=(safetensors_fuzzer hf_config_fuzzer)
  for extra in tests/fuzz/*_fuzzer.cc; do
    n=$(basename "$extra" .cc); [[ " ${targets[*]} " == *" $n "* ]] || targets+=("$n")
  done
  cmake --build build-fuzz -j"$jobs" --target "${targets[@]}" || return 1
  local ok=0
  for t in "${targets[@]}"; do
    local corpus_name=${t%_fuzzer} work
    work=$(mktemp -d)
    [ -d "tests/fuzz/corpus/$corpus_name" ] && cp -r "tests/fuzz/corpus/$corpus_name/." "$work/"
    echo "-- $t for ${RG_FUZZ_SECONDS:-45} s"
    if ! build-fuzz/tests/"$t" -max_total_time="${RG_FUZZ_SECONDS:-45}" -rss_limit_mb=2048 \
         -timeout=10 -print_final_stats=1 "$work" 2>&1 | tail -15; then ok=1; fi
    rm -rf "$work"
  done
  return $ok
}
server() { tests/server/run.sh build; }
# Replicas sharing a Redis state store behind nginx (real redis-server and nginx).
replicas() { tests/deploy/replicas.sh build; }
# The Python package (pytest; pip install into a new venv) and the C API
# (cmake --install, a C program built with pkg-config and find_package).
python_pkg() { tests/python/run.sh build; }
capi() { tests/capi/run.sh build; }
# The README's main command, as a new user runs it: a fresh clone of HEAD
# (no build/, no models/cache/), scripts/demo.sh with a small random model.
demo_fresh_clone() { mkdir -p build-demo && tests/demo/fresh_clone.sh "$(mktemp -d -p "$PWD/build-demo")"; }

step "release build" build_release
if [ $failed -eq 0 ]; then
  step "ctest (release)" ctest_release
  step "reference contract check" contract_check
  [ -x tests/server/run.sh ] && step "server (openai npm)" server
  step "replicas + Redis + nginx" replicas
  step "python package (pytest, pip install)" python_pkg
  step "C API (installed tree, pkg-config)" capi
fi
step "main command from a fresh clone (scripts/demo.sh)" demo_fresh_clone
[ "${RG_SKIP_ASAN:-0}" = 1 ] || step "ctest (ASan+UBSan)" asan
[ "${RG_SKIP_FUZZ:-0}" = 1 ] || step "fuzz (libFuzzer)" fuzz

echo
for f in "${failures[@]}"; do echo "failed stage: $f"; done
echo "rgemma: $passed passed, $failed failed"
[ $failed -eq 0 ]
