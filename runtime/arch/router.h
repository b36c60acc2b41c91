// The MoE router of one token: which experts run and with what weight (llama.cpp build_moe_ffn,
// DeepSeek-V3's group-limited top-k).
//
//   probs = softmax(logits) or sigmoid(logits)      the weights come from these, unbiased
//   sel   = probs + exp_probs_b                     the bias steers selection only
//   groups: score = sum of the top-2 `sel` in each group; experts outside the n_group_used best
//           groups are excluded
//   ids   = the n_used largest `sel`, best first    ties go to the lower index
//   w     = probs[ids], divided by their sum (clamped ≥ 6.1e-5) when normalising, times scale
#pragma once

#include <cstdint>

#include "runtime/model.h"

namespace strata::arch {

struct RouterConfig {
    int64_t n_expert = 0;
    int64_t n_used = 0;
    int64_t n_group = 1;       // experts form n_group equal groups of consecutive ids
    int64_t n_group_used = 1;  // groups kept per token
    Gating gating = Gating::Softmax;
    bool norm = false;   // normalise the chosen weights to sum 1
    float scale = 1.0f;  // multiplies the weights (after normalising)

    static RouterConfig from(const HParams& hp);
};

// logits: the router's n_expert outputs for one token; bias: n_expert selection biases or null.
// Writes n_used expert ids and weights, best first.
void route(const RouterConfig& c, const float* logits, const float* bias, int32_t* ids,
           float* weights);

}  // namespace strata::arch
