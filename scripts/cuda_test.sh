#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, in one call: builds Strata with the CUDA tier (build-cuda),
# shows the GPU it sees, runs the CUDA tests (kernels against the CPU, split execution through
# the card on the golden models) and the host-device split tests, then the bench model's decode
# CPU-only and with a quarter of its weights on the GPU, side by side.
#
#   scripts/cuda_test.sh [BUILD_DIR]
# Environment: STRATA_BUILD_JOBS (nproc).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-cuda}
jobs=${STRATA_BUILD_JOBS:-$(nproc)}

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON \
    -DSTRATA_BENCH=OFF >/dev/null
ninja -C "$build" -j "$jobs" strata strata_tests
"$build/strata" info | grep -i '^gpu'
"$build/tests/strata_tests" --gtest_filter='CudaDevice.*:SplitExecution.*:HostDevice.*'

model=${STRATA_CUDA_BENCH_MODEL:-$build/bench.gguf}
[[ -f $model ]] || "$build/strata" synth --arch deepseek2 --preset bench --type Q4_K_M -o "$model"
"$build/strata" bench -m "$model" -p 64 -n 32 --bandwidth 0 --json
"$build/strata" bench -m "$model" -p 64 -n 32 --gpu-budget "$(($(stat -c %s "$model") / 4))" \
    --gpu-device cuda --json
