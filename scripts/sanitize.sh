#!/usr/bin/env bash
# Builds everything with AddressSanitizer and UndefinedBehaviorSanitizer (-DSTRATA_SANITIZE=ON)
# in build-asan and runs the whole ctest suite under them. Any report fails the test that made it.
#
#   scripts/sanitize.sh [extra ctest arguments, e.g. -R Gguf]
# Environment: STRATA_ASAN_BUILD_DIR (build-asan), CXX (g++ unless set), STRATA_BUILD_JOBS
# (nproc).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${STRATA_ASAN_BUILD_DIR:-$root/build-asan}
jobs=${STRATA_BUILD_JOBS:-$(nproc)}

# -O1 -g keeps the sanitized tests quick enough and their stack traces readable. Benchmarks and
# the CUDA tier stay out: neither is tested by ctest here, and the CUDA runtime and ASan's
# shadow memory do not mix without extra options.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
    -DCMAKE_CXX_COMPILER="${CXX:-g++}" -DSTRATA_SANITIZE=ON -DSTRATA_BENCH=OFF \
    -DSTRATA_CUDA=OFF >/dev/null
ninja -C "$build" -j "$jobs"

# halt_on_error: the first report aborts the test process; UBSan prints where it happened.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:strict_init_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
