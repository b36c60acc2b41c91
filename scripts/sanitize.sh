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

# The Release optimisation level, so that the numerics match the normal build (at -O1 g++ forms
# no FMAs, which moves quantized logits enough to fail tight golden bounds), plus line tables
# for readable reports. Benchmarks and the CUDA tier stay out: ctest does not run them, and the
# CUDA runtime and ASan's shadow memory do not mix without extra options.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O3 -DNDEBUG -g1" \
    -DCMAKE_CXX_COMPILER="${CXX:-g++}" -DSTRATA_SANITIZE=ON -DSTRATA_BENCH=OFF \
    -DSTRATA_CUDA=OFF >/dev/null
ninja -C "$build" -j "$jobs"

# halt_on_error: the first report aborts the test process; UBSan prints where it happened.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:strict_init_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
