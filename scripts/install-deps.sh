#!/usr/bin/env bash
# Installs the Debian 12 packages rgemma builds and tests with (idempotent:
# apt runs only when something is missing).
set -euo pipefail
packages=(
  build-essential cmake pkg-config            # toolchain
  ccache                                      # the test suite's fresh-clone build reuses its release objects
  libsentencepiece-dev                        # tokenizer.model
  libxxhash-dev                               # state-file checksums (XXH3)
  nlohmann-json3-dev libcli11-dev             # JSON, command line
  libcpp-httplib-dev                          # rgemma serve
  libedit-dev                                 # line editing in rgemma chat
  libhiredis-dev redis-server nginx           # serve --state-store (Redis); replicas behind nginx in the tests
  libgtest-dev libgmock-dev                   # tests
  clang libclang-rt-14-dev                    # libFuzzer + sanitizer runtimes
  python3 python3-numpy                       # the reference-fixture contract check
  python3-dev pybind11-dev python3-pybind11   # the Python package rgemma
  python3-venv python3-setuptools python3-pytest
  python3-jsonschema                          # validates structured-output samples
  gdb                                         # thread stacks of a test child that hangs
  nodejs npm                                  # server tests with the openai npm package
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere than Debian (then nodejs/npm are not dpkg-installed).
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -ra missing <<<"${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
