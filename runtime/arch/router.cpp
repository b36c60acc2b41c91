// Expert selection and weights for one token.
#include "runtime/arch/router.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "runtime/ops.h"

namespace strata::arch {
namespace {

// Indices of the k largest values, largest first, ties to the lower index.
void top_k(const float* v, int64_t n, int64_t k, int32_t* out, std::vector<int32_t>& order) {
    order.resize(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
    std::copy(order.begin(), order.begin() + k, out);
}

}  // namespace

RouterConfig RouterConfig::from(const HParams& hp) {
    RouterConfig c;
    c.n_expert = hp.n_expert;
    c.n_used = hp.n_expert_used;
    c.n_group = hp.n_group;
    c.n_group_used = hp.n_group_used;
    c.gating = hp.gating;
    c.norm = hp.weights_norm;
    c.scale = hp.weights_scale;
    return c;
}

void route(const RouterConfig& c, const float* logits, const float* bias, int32_t* ids,
           float* weights) {
    // Per-thread scratch: routing runs once per token and layer, often inside parallel loops.
    thread_local std::vector<float> probs, sel, group_score;
    thread_local std::vector<int32_t> order, chosen;
    const int64_t n = c.n_expert;
    probs.assign(logits, logits + n);
    if (c.gating == Gating::Softmax) {
        ops::softmax(probs.data(), n);
    } else {
        for (float& p : probs) p = ops::sigmoid(p);
    }
    sel = probs;
    if (bias) {
        for (int64_t e = 0; e < n; ++e) sel[static_cast<size_t>(e)] += bias[e];
    }

    if (c.n_group > 1) {
        // A group's score is the sum of its two best biased scores (DeepSeek-V3).
        const int64_t per = n / c.n_group;
        group_score.resize(static_cast<size_t>(c.n_group));
        int32_t best[2];
        for (int64_t g = 0; g < c.n_group; ++g) {
            const float* s = sel.data() + g * per;
            const int64_t k = std::min<int64_t>(2, per);
            top_k(s, per, k, best, order);
            float sum = s[best[0]];
            if (k > 1) sum += s[best[1]];
            group_score[static_cast<size_t>(g)] = sum;
        }
        chosen.resize(static_cast<size_t>(c.n_group_used));
        top_k(group_score.data(), c.n_group, c.n_group_used, chosen.data(), order);
        std::vector<bool> keep(static_cast<size_t>(c.n_group), false);
        for (int32_t g : chosen) keep[static_cast<size_t>(g)] = true;
        for (int64_t e = 0; e < n; ++e) {
            if (!keep[static_cast<size_t>(e / per)]) sel[static_cast<size_t>(e)] = -INFINITY;
        }
    }

    top_k(sel.data(), n, c.n_used, ids, order);
    for (int64_t i = 0; i < c.n_used; ++i) weights[i] = probs[static_cast<size_t>(ids[i])];
    if (c.norm) {
        double sum = 0.0;  // ggml_sum_rows accumulates in double
        for (int64_t i = 0; i < c.n_used; ++i) sum += static_cast<double>(weights[i]);
        // Clamped to the smallest normal half, as the reference does, against a zero sum.
        const float total = std::max(static_cast<float>(sum), 6.103515625e-5f);
        for (int64_t i = 0; i < c.n_used; ++i) weights[i] /= total;
    }
    if (c.scale != 0.0f) {
        for (int64_t i = 0; i < c.n_used; ++i) weights[i] *= c.scale;
    }
}

}  // namespace strata::arch
