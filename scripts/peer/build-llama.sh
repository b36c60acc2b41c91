#!/usr/bin/env bash
# Builds the peer, llama.cpp's CPU backend, from the source that a pinned version of the npm package
# node-llama-cpp bundles (llama/gitRelease.bundle, a git bundle of one squashed commit), into a
# cache outside the clone. Prints the build directory (the argument of scripts/compare-llamacpp.sh
# and scripts/peer-bench.sh) on stdout; everything else goes to stderr. A second run is quick: the
# package and the source are kept, and ninja finds nothing to do.
#
#   scripts/peer/build-llama.sh [--cache DIR] [--jobs N] [--no-amx]
# --cache: where the package, the source and the build go (default $STRATA_PEER_CACHE, else
#          ${XDG_CACHE_HOME:-$HOME/.cache}/strata/peer).
# --jobs:  parallel compile jobs (default: the number of CPUs).
# --no-amx: a second build, build-<commit>-noamx, for this CPU's AVX-512 but without AMX (the
#          pinned release's AMX kernels fault at ldtilecfg on some Sapphire Rapids class VMs and
#          abort on quantized deepseek2 graphs); weight repacking stays on. $cache/build is not
#          changed.
#
# The build: Release, GGML_NATIVE (the default: tuned for this machine's CPU), no GPU backend,
# shared libraries (compare-llamacpp.sh links libllama and libggml*), only the targets the scripts
# use: llama (with ggml, ggml-base and ggml-cpu), llama-bench and llama-batched-bench.
# npm runs no install script (--ignore-scripts): the package's postinstall would download or build
# binaries of its own; optional dependencies (those prebuilt binaries) are not fetched.
set -euo pipefail

# The pin. node-llama-cpp 3.22.1 bundles ggml-org/llama.cpp release v0.5.0 as commit de3ff81
# (llama/llama.cpp.info.json; `git bundle list-heads llama/gitRelease.bundle`).
package_version=3.22.1
source_commit=de3ff815ea7d559ee917f063901b8986f038abc6

usage() {
    sed -n '7,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

cache=${STRATA_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strata/peer}
jobs=$(nproc)
no_amx=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --cache) cache=$2; shift ;;
        --jobs) jobs=$2; shift ;;
        --no-amx) no_amx=1 ;;
        -h|--help) usage ;;
        *) echo "build-llama.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
done
for tool in npm git cmake ninja; do
    command -v "$tool" >/dev/null || { echo "build-llama.sh: $tool not found (scripts/setup.sh installs it)" >&2; exit 2; }
done
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
log() { echo "build-llama.sh: $*" >&2; }

# --- The package ---------------------------------------------------------------------------------
pkg="$cache/npm-$package_version"
bundle="$pkg/node_modules/node-llama-cpp/llama/gitRelease.bundle"
if [[ ! -f $bundle ]]; then
    log "installing node-llama-cpp@$package_version into $pkg"
    rm -rf "$pkg.tmp"
    mkdir -p "$pkg.tmp"
    # A package.json of its own, so npm never walks up into another project.
    echo '{"name": "strata-peer", "private": true}' >"$pkg.tmp/package.json"
    (cd "$pkg.tmp" && npm install --ignore-scripts --omit=optional --no-audit --no-fund \
        --loglevel=error "node-llama-cpp@$package_version" >&2)
    [[ -f $pkg.tmp/node_modules/node-llama-cpp/llama/gitRelease.bundle ]] || {
        log "node-llama-cpp@$package_version has no llama/gitRelease.bundle: not the layout this script knows"
        exit 1
    }
    rm -rf "$pkg"
    mv "$pkg.tmp" "$pkg"
fi

# --- The source ----------------------------------------------------------------------------------
src="$cache/llama.cpp-${source_commit:0:7}"
if [[ ! -f $src/include/llama.h ]]; then
    head=$(git bundle list-heads "$bundle" | awk '$2 == "HEAD" { print $1 }')
    [[ $head == "$source_commit" ]] || {
        log "the bundle in node-llama-cpp@$package_version holds commit ${head:-none}, not $source_commit"
        exit 1
    }
    log "unpacking llama.cpp ${source_commit:0:7} into $src"
    rm -rf "$src.tmp"
    git clone --quiet "$bundle" "$src.tmp" 2>&1 | grep -v detached >&2 || true
    git -C "$src.tmp" -c advice.detachedHead=false checkout --quiet "$source_commit"
    rm -rf "$src"
    mv "$src.tmp" "$src"
fi

# --- The build -----------------------------------------------------------------------------------
# $cache/build links to it (ctest's default peer: tests/compare_llamacpp_test.cpp).
build="$cache/build-${source_commit:0:7}"
isa_flags=()
if [[ $no_amx == 1 ]]; then
    # GGML_NATIVE's -march=native would bring AMX back: name this CPU's other extensions instead.
    build+=-noamx
    has() { grep -qw "$1" /proc/cpuinfo; }
    flag() { if has "$2"; then isa_flags+=("-D$1=ON"); else isa_flags+=("-D$1=OFF"); fi; }
    isa_flags+=(-DGGML_NATIVE=OFF)
    flag GGML_AVX avx; flag GGML_AVX2 avx2; flag GGML_FMA fma; flag GGML_F16C f16c
    flag GGML_BMI2 bmi2; flag GGML_AVX512 avx512f; flag GGML_AVX512_VBMI avx512vbmi
    flag GGML_AVX512_VNNI avx512_vnni; flag GGML_AVX512_BF16 avx512_bf16
fi
if [[ ! -f $build/CMakeCache.txt ]]; then
    log "configuring $build"
    cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON "${isa_flags[@]}" \
        -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_BACKEND_DL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TOOLS=ON >&2
fi
log "building llama, llama-bench and llama-batched-bench in $build ($jobs jobs)"
cmake --build "$build" -j "$jobs" --target llama llama-bench llama-batched-bench >&2
for f in bin/llama-bench bin/llama-batched-bench; do
    [[ -x $build/$f ]] || { log "no $build/$f after the build"; exit 1; }
done
# The build the tests find by default (tests/compare_llamacpp_test.cpp): $cache/build.
[[ $no_amx == 1 ]] || ln -sfn "$(basename "$build")" "$cache/build"
echo "$build"
