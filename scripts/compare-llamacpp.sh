#!/usr/bin/env bash
# Compares Strata with llama.cpp on synthesized models the golden set does not have: other layer
# counts, widths, head counts (MHA, GQA, MQA), head sizes, expert counts and routing, and every
# weight type and mix, with random prompts of 8 to 300 tokens. Per case: llama.cpp's prompt logits
# (one batch, every position) and 16 greedy tokens (one decode call each) as the golden set was
# made (scripts/peer/llama_logits.cpp), against `strata eval --ref --greedy 16`; one row with
# max_rel, mean_kl, top1, positions identical bit for bit, greedy identical, and PASS/FAIL by the
# golden README's bounds (F32: max_rel ≤ 1e-3 and greedy identical; F16, BF16 and quantized:
# mean_kl ≤ 5e-3 and top1 ≥ 0.98). Exits 1 when a case fails.
#
#   scripts/compare-llamacpp.sh LLAMA_BUILD_DIR [--quick] [--strata BIN] [--threads N]
#                                               [--keep DIR] [--only PATTERN] [--seed N]
#                                               [--strata-args ARGS] [--isa ISA]
# LLAMA_BUILD_DIR: a CMake build of llama.cpp (its source tree is read from CMakeCache.txt for the
# headers; libllama and libggml* are linked from the build). This script never builds llama.cpp.
# --quick: every type and most shapes at least once (21 cases) instead of all of them (250).
# --strata: the strata binary (default: build/strata of this checkout).
# --keep: keep the models, logits and the peer program in DIR. --only: cases whose name contains
# PATTERN. --seed: another set of weights and prompts (default 1000). --strata-args: more
# arguments for `strata eval`, e.g. "--mla-legacy per-head". --isa: STRATA_ISA for strata (default
# avx2: the exact mode, kernels in llama.cpp's order, which the "identical" column counts on; the
# faster AVX-512 kernels are within the bounds but not bit for bit).
set -euo pipefail

usage() {
    sed -n '11,22p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
llama_build=""
quick=0
strata="$root/build/strata"
threads=2
keep=""
only=""
seed_base=1000
strata_args=""
isa=avx2
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) quick=1 ;;
        --strata) strata=$2; shift ;;
        --threads) threads=$2; shift ;;
        --keep) keep=$2; shift ;;
        --only) only=$2; shift ;;
        --seed) seed_base=$2; shift ;;
        --strata-args) strata_args=$2; shift ;;
        --isa) isa=$2; shift ;;
        -h|--help) usage ;;
        -*) echo "compare-llamacpp.sh: unknown option $1" >&2; usage ;;
        *) [[ -z $llama_build ]] || usage; llama_build=$1 ;;
    esac
    shift
done
[[ -n $llama_build ]] || usage
llama_build=$(cd "$llama_build" && pwd -P)  # -P: find does not follow a linked directory
[[ -x $strata ]] || { echo "compare-llamacpp.sh: no strata binary at $strata (--strata)" >&2; exit 2; }

# --- The peer program, built against the given llama.cpp --------------------------------------
cache="$llama_build/CMakeCache.txt"
[[ -f $cache ]] || { echo "compare-llamacpp.sh: $llama_build has no CMakeCache.txt: not a CMake build of llama.cpp" >&2; exit 2; }
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
[[ -f $src/include/llama.h && -f $src/ggml/include/ggml.h ]] || {
    echo "compare-llamacpp.sh: no include/llama.h and ggml/include/ggml.h under $src (from $cache)" >&2; exit 2; }
libdir=$(dirname "$(find "$llama_build" -name 'libllama.so' -print -quit)")
[[ -f $libdir/libllama.so ]] || { echo "compare-llamacpp.sh: no libllama.so under $llama_build (build with BUILD_SHARED_LIBS=ON)" >&2; exit 2; }
ggml_libdir=$(dirname "$(find "$llama_build" -name 'libggml-base.so' -print -quit)")

if [[ -n $keep ]]; then
    work=$keep
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
peer="$work/llama_logits"
"${CXX:-g++}" -O2 -std=c++17 -I"$src/include" -I"$src/ggml/include" \
    "$root/scripts/peer/llama_logits.cpp" -o "$peer" \
    -L"$libdir" -L"$ggml_libdir" -lllama -lggml -lggml-base \
    -Wl,-rpath,"$libdir" -Wl,-rpath,"$ggml_libdir"

# --- The matrix ---------------------------------------------------------------------------------
# name | synth arguments (beyond the type and seed) | vocab of the model | types (empty: all)
shapes=(
    "llama-tiny|--arch llama --preset tiny|512|"
    "llama-mqa-3L|--arch llama --preset tiny --layers 3 --embd 512 --heads 8 --heads-kv 1 --ff 768|512|"
    "llama-gqa3-hd64|--arch llama --preset tiny --embd 384 --heads 6 --heads-kv 2 --head-dim 64 --ff 1024|512|"
    "llama-mha-hd128-tied|--arch llama --preset tiny --embd 256 --heads 2 --heads-kv 2 --head-dim 128 --ff 512 --tied|512|"
    "qwen2-tiny|--arch qwen2 --preset tiny|512|"
    "qwen2-gqa4-2L-untied|--arch qwen2 --preset tiny --layers 2 --embd 512 --heads 8 --heads-kv 2 --ff 1024 --untied|512|"
    "qwen2-mqa-hd64|--arch qwen2 --preset tiny --embd 320 --heads 5 --heads-kv 1 --head-dim 64 --ff 640|512|"
    "ds2-v3-tiny|--arch deepseek2 --preset tiny|512|"
    "ds2-lite-tiny|--arch deepseek2 --preset tiny-lite|512|"
    "ds2-legacy-kv_b|--arch deepseek2 --preset tiny-legacy|512|"
    "ds2-16x4-softmax-groups|--arch deepseek2 --preset tiny --layers 3 --experts 16 --experts-used 4 --shared-experts 2 --groups 8 --groups-used 3 --gating softmax|512|"
    "ds2-lite-8heads-sigmoid|--arch deepseek2 --preset tiny-lite --heads 8 --kv-lora 64 --qk-nope 48 --qk-rope 16 --v-head 48 --experts 6 --experts-used 3 --gating sigmoid --groups 2 --groups-used 1|512|"
    # Rows that fit no vector step or block (llama-quantize falls back to F16 there).
    "llama-odd-hd40|--arch llama --preset tiny --embd 200 --heads 5 --heads-kv 5 --head-dim 40 --ff 300|512|F32 BF16 Q4_K_M"
    "qwen2-hd96-mqa|--arch qwen2 --preset tiny --embd 288 --heads 3 --heads-kv 1 --head-dim 96 --ff 600|512|F32 F16 Q8_0"
    "ds2-odd-rope24|--arch deepseek2 --preset tiny-lite --embd 192 --kv-lora 96 --qk-nope 40 --qk-rope 24 --v-head 40 --ff 160 --ff-exp 96|512|F32 Q5_K_M Q4_0"
    # Legacy attn_kv_b files of other shapes: q_lora and kv_lora 256 (kv_b rows take the
    # K-quants, partner Q8_K), R1's head sizes, many heads with wide values, odd sizes.
    "ds2-legacy-v3-qlora|--arch deepseek2 --preset tiny --legacy-mla|512|"
    "ds2-legacy-8h-r1heads|--arch deepseek2 --preset tiny-legacy --heads 8 --kv-lora 512 --qk-nope 128 --qk-rope 64 --v-head 128|512|"
    "ds2-legacy-16h-3L-v96|--arch deepseek2 --preset tiny-legacy --layers 3 --heads 16 --kv-lora 256 --qk-nope 32 --qk-rope 16 --v-head 96|512|F32 F16 BF16 Q8_0 Q4_1 Q5_1 Q2_K Q4_K Q6_K Q4_K_M Q3_K_M"
    "ds2-legacy-odd-rope24|--arch deepseek2 --preset tiny-legacy --embd 192 --kv-lora 96 --qk-nope 40 --qk-rope 24 --v-head 40 --ff 160 --ff-exp 96|512|F32 BF16 Q8_0 Q4_0 Q4_1 Q5_K_M"
)
types=(F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K Q4_K_M Q5_K_M Q3_K_M)
# Lengths around the reference's cache view (256 positions, then 512): a prompt of 250 crosses
# it during the greedy continuation.
prompt_lengths=(8 40 100 300 23 170 61 250 256 257)

# --quick: these pairs (shape index:type).
quick_cases=(0:F32 0:F16 1:Q4_0 2:Q5_K_M 3:BF16 4:F32 4:Q3_K 5:Q4_1 6:Q2_K 7:Q4_K_M 7:Q6_K
             8:Q5_K 8:Q5_1 9:F32 10:Q3_K_M 11:Q8_0 11:Q5_0 1:Q4_K 12:F32 14:Q5_K_M 16:Q4_K_M)
cases=()
for s in "${!shapes[@]}"; do
    IFS='|' read -r _ _ _ shape_types <<<"${shapes[$s]}"
    for t in "${!types[@]}"; do
        if [[ $quick == 1 && ! " ${quick_cases[*]} " == *" $s:${types[$t]} "* ]]; then continue; fi
        if [[ -n $shape_types && ! " $shape_types " == *" ${types[$t]} "* ]]; then continue; fi
        n=${prompt_lengths[$(( (s + t) % ${#prompt_lengths[@]} ))]}
        cases+=("$s|${types[$t]}|$n|$(( seed_base + 17 * s + t ))")
    done
done

# Random prompt ids below the vocabulary, from a seed.
prompt() {
    awk -v n="$1" -v v="$2" -v seed="$3" \
        'BEGIN { srand(seed); for (i = 0; i < n; i++) printf "%s%d", (i ? "," : ""), int(rand() * v) }'
}

printf '%-28s %-7s %4s %10s %10s %7s %9s %8s %s\n' case type n max_rel mean_kl top1 identical greedy result
failed=0
ran=0
for c in "${cases[@]}"; do
    IFS='|' read -r s type n seed <<<"$c"
    IFS='|' read -r shape synth_args vocab _ <<<"${shapes[$s]}"
    name="$shape"
    [[ -z $only || "$name.$type" == *"$only"* ]] || continue
    model="$work/$shape.$type.gguf"
    # shellcheck disable=SC2086
    "$strata" synth $synth_args --type "$type" --seed "$seed" -o "$model" >/dev/null
    tokens=$(prompt "$n" "$vocab" "$seed")
    if ! peer_greedy=$("$peer" "$model" "$tokens" 16 "$work/ref.f32" "$threads"); then
        printf '%-28s %-7s %4s %s\n' "$name" "$type" "$n" "llama.cpp failed: FAIL"
        failed=$((failed + 1)); continue
    fi
    # shellcheck disable=SC2086
    if ! out=$(STRATA_ISA=$isa "$strata" eval -m "$model" --tokens "$tokens" --ref "$work/ref.f32" --greedy 16 \
                 --threads "$threads" $strata_args 2>"$work/err"); then
        printf '%-28s %-7s %4s %s\n' "$name" "$type" "$n" "strata failed ($(tail -1 "$work/err")): FAIL"
        failed=$((failed + 1)); continue
    fi
    metrics=$(grep '^vs ' <<<"$out")
    max_rel=$(sed -n 's/.*max_rel \([^ ]*\) .*/\1/p' <<<"$metrics")
    mean_kl=$(sed -n 's/.*mean_kl \([^,]*\),.*/\1/p' <<<"$metrics")
    top1=$(sed -n 's/.*top1 \([^,]*\),.*/\1/p' <<<"$metrics")
    identical=$(sed -n 's/.*, \([0-9]*\) of \([0-9]*\) positions identical/\1\/\2/p' <<<"$metrics")
    ours_greedy=$(sed -n 's/^greedy: //p' <<<"$out")
    greedy=differs
    [[ $ours_greedy == "$peer_greedy" ]] && greedy=same
    if [[ $type == F32 ]]; then
        ok=$(awk -v m="$max_rel" -v g="$greedy" 'BEGIN { print (m <= 1e-3 && g == "same") ? "PASS" : "FAIL" }')
    else
        ok=$(awk -v k="$mean_kl" -v t="$top1" 'BEGIN { print (k <= 5e-3 && t >= 0.98) ? "PASS" : "FAIL" }')
    fi
    [[ $ok == PASS ]] || failed=$((failed + 1))
    ran=$((ran + 1))
    printf '%-28s %-7s %4s %10s %10s %7s %9s %8s %s\n' "$name" "$type" "$n" "$max_rel" "$mean_kl" \
        "$top1" "$identical" "$greedy" "$ok"
    [[ -n $keep ]] || rm -f "$model"
done
echo "$ran cases, $failed failed"
[[ $failed == 0 ]]
