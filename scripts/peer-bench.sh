#!/usr/bin/env bash
# Strata against llama.cpp on one model, side by side: `strata bench --json` and llama.cpp's
# `llama-bench` in its default configuration (weight repacking on, mmap, its own warm-up), run
# alternately, ROUNDS rounds each, same file, same threads, same prompt and generation lengths.
# Prints every round, then the medians and the ratios Strata / llama.cpp for prefill and decode.
#
#   scripts/peer-bench.sh PEER_BUILD MODEL [--threads N] [-p 512] [-n 128] [--depth D]
#                         [--rounds 5] [--strata BIN] [--batched] [--peer-args ARGS]
# PEER_BUILD: a llama.cpp build directory (scripts/peer/build-llama.sh prints one) holding
#             bin/llama-bench and bin/llama-batched-bench.
# --depth:    decode after D cached positions (llama-bench -d; strata bench --depth).
# --batched:  use llama-batched-bench (-npp P -ntg N -npl 1) instead of llama-bench; chosen by
#             itself when llama-bench fails on the model (it aborts on quantized deepseek2 with
#             AMX). Where the pinned llama.cpp's AMX kernels fault outright (ldtilecfg: a
#             general protection fault on an Intel Xeon VM, on every quantized model), use the
#             build of `scripts/peer/build-llama.sh --no-amx`. batched-bench has no depth: its decode runs after the P prompt tokens (and
#             strata's then too: strata bench --decode-after-prompt); llama-bench's tg test and
#             strata bench's default decode after the depth only.
# --peer-args: more arguments for both llama.cpp tools, e.g. "--no-repack" for batched-bench on a
#             model larger than RAM (the repacked copy is allocated in RAM: 34 GB for big40).
# Environment for strata (STRATA_ISA, OMP_*) passes through; the machine's load is not controlled:
# run it on a quiet machine, and read the spread of the rounds.
set -euo pipefail

usage() {
    sed -n '7,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
peer=""
model=""
threads=$(nproc)
n_prompt=512
n_gen=128
depth=0
rounds=5
strata="$root/build/strata"
batched=0
peer_args=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --threads|-t) threads=$2; shift ;;
        -p) n_prompt=$2; shift ;;
        -n) n_gen=$2; shift ;;
        --depth|-d) depth=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --strata) strata=$2; shift ;;
        --batched) batched=1 ;;
        --peer-args) peer_args=$2; shift ;;
        -h|--help) usage ;;
        -*) echo "peer-bench.sh: unknown option $1" >&2; usage ;;
        *)
            if [[ -z $peer ]]; then peer=$1
            elif [[ -z $model ]]; then model=$1
            else usage; fi ;;
    esac
    shift
done
[[ -n $peer && -n $model ]] || usage
[[ -f $model ]] || { echo "peer-bench.sh: no model file $model" >&2; exit 2; }
[[ -x $strata ]] || { echo "peer-bench.sh: no strata binary at $strata (--strata)" >&2; exit 2; }
llama_bench="$peer/bin/llama-bench"
batched_bench="$peer/bin/llama-batched-bench"
[[ -x $llama_bench && -x $batched_bench ]] || {
    echo "peer-bench.sh: no bin/llama-bench and bin/llama-batched-bench under $peer" >&2; exit 2; }
strata_depth=()
if [[ $depth != 0 ]]; then
    "$strata" bench --help 2>&1 | grep -q -- '--depth' || {
        echo "peer-bench.sh: this strata bench has no --depth" >&2; exit 2; }
    strata_depth=(--depth "$depth")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One round of strata: "prefill_tps decode_tps".
# Its decode starts where the peer's does: after the depth (llama-bench's tg test), or after the
# prompt too (llama-batched-bench).
strata_round() {
    local after=()
    [[ $batched == 1 ]] && after=(--decode-after-prompt)
    "$strata" bench -m "$model" -p "$n_prompt" -n "$n_gen" --threads "$threads" \
        "${strata_depth[@]}" "${after[@]}" --json 2>"$work/strata.err" >"$work/strata.json" || {
        echo "peer-bench.sh: strata bench failed: $(tail -1 "$work/strata.err")" >&2; return 1; }
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["prefill_tps"], j["decode_tps"])' \
        "$work/strata.json"
}

# One round of llama.cpp: "prefill_tps decode_tps", or nothing when the tool failed.
llama_round() {
    if [[ $batched == 0 ]]; then
        "$llama_bench" -m "$model" -t "$threads" -p "$n_prompt" -n "$n_gen" -d "$depth" -r 1 \
            -o json $peer_args >"$work/llama.json" 2>"$work/llama.err" || return 1
        python3 - "$work/llama.json" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
pp = [r["avg_ts"] for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0]
tg = [r["avg_ts"] for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0]
print(pp[0] if pp else 0, tg[0] if tg else 0)
EOF
    else
        "$batched_bench" -m "$model" -t "$threads" -c $((n_prompt + n_gen)) -b 2048 -ub 512 \
            -npp "$n_prompt" -ntg "$n_gen" -npl 1 --output-format jsonl $peer_args \
            >"$work/llama.json" 2>"$work/llama.err" || return 1
        python3 - "$work/llama.json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(rows[-1]["speed_pp"], rows[-1]["speed_tg"])
EOF
    fi
}

echo "model $model, $threads threads, -p $n_prompt -n $n_gen, depth $depth, $rounds rounds"
printf '%-6s %-10s %12s %12s\n' round runtime prefill_tps decode_tps
: >"$work/results"
for ((r = 1; r <= rounds; r++)); do
    # The peer first: whether it runs llama-bench or llama-batched-bench decides where strata's
    # decode starts.
    if ! out=$(llama_round); then
        if [[ $batched == 0 ]]; then
            echo "llama-bench failed ($(grep -v '^$' "$work/llama.err" | tail -1)); using llama-batched-bench" >&2
            batched=1
            out=$(llama_round) || { echo "peer-bench.sh: llama-batched-bench failed too: $(tail -1 "$work/llama.err")" >&2; exit 1; }
        else
            echo "peer-bench.sh: llama-batched-bench failed: $(tail -1 "$work/llama.err")" >&2; exit 1
        fi
    fi
    read -r pp tg <<<"$out"
    name=llama.cpp
    [[ $batched == 1 ]] && name=llama-bb
    printf '%-6s %-10s %12.2f %12.2f\n' "$r" "$name" "$pp" "$tg"
    echo "llama $pp $tg" >>"$work/results"
    out=$(strata_round) || exit 1
    read -r pp tg <<<"$out"
    printf '%-6s %-10s %12.2f %12.2f\n' "$r" strata "$pp" "$tg"
    echo "strata $pp $tg" >>"$work/results"
done

python3 - "$work/results" <<'EOF'
import statistics, sys
runs = {"strata": [], "llama": []}
for line in open(sys.argv[1]):
    who, pp, tg = line.split()
    runs[who].append((float(pp), float(tg)))
med = {w: [statistics.median(x[i] for x in v) for i in (0, 1)] for w, v in runs.items()}
print(f"{'median':<17} {'prefill_tps':>12} {'decode_tps':>12}")
print(f"{'strata':<17} {med['strata'][0]:12.2f} {med['strata'][1]:12.2f}")
print(f"{'llama.cpp':<17} {med['llama'][0]:12.2f} {med['llama'][1]:12.2f}")
ratio = [s / l if l > 0 else float("nan") for s, l in zip(med["strata"], med["llama"])]
print(f"{'strata/llama.cpp':<17} {ratio[0]:12.3f} {ratio[1]:12.3f}")
EOF
