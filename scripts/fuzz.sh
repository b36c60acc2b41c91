#!/usr/bin/env bash
# Fuzzes the GGUF reader: builds tests/fuzz/gguf_fuzz with clang (libFuzzer, ASan, UBSan) in
# build-fuzz, writes the seed corpus (writer files, shrunk golden models and headers, the
# malformed corpus), and runs the fuzzer for SECONDS (default 60). Exits non-zero on any finding;
# the input that caused it is left in build-fuzz/fuzz-artifacts/.
#
#   scripts/fuzz.sh [SECONDS]
# Environment: STRATA_FUZZ_BUILD_DIR (build-fuzz), STRATA_GOLDEN_DIR (../shared/golden),
# STRATA_BUILD_JOBS (2), STRATA_FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail

seconds=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${STRATA_FUZZ_BUILD_DIR:-$root/build-fuzz}
golden=${STRATA_GOLDEN_DIR:-$root/../shared/golden}
jobs=${STRATA_BUILD_JOBS:-2}

# -O2 -g: fast enough to fuzz, with usable stack traces. CUDA stays out of a sanitizer build.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DSTRATA_FUZZ=ON -DSTRATA_TESTS=ON -DSTRATA_BENCH=OFF -DSTRATA_CUDA=OFF >/dev/null
ninja -C "$build" -j "$jobs" gguf_fuzz gguf_fuzz_seeds

seeds=$build/fuzz-seeds
corpus=$build/fuzz-corpus      # kept between runs, so coverage builds up
artifacts=$build/fuzz-artifacts
rm -rf "$seeds"
mkdir -p "$corpus" "$artifacts"
if [[ -d $golden ]]; then
    "$build/tests/gguf_fuzz_seeds" "$seeds" "$golden"
else
    echo "fuzz.sh: no golden set at $golden; seeding from the writer and malformed corpus only"
    "$build/tests/gguf_fuzz_seeds" "$seeds"
fi

# halt_on_error: the first report ends the run with a non-zero status. The malloc limit makes
# any allocation sized by an unchecked number a finding (inputs are at most 64 KiB).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# shellcheck disable=SC2086
exec "$build/tests/gguf_fuzz" "$corpus" "$seeds" \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=128 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 ${STRATA_FUZZ_ARGS:-}
