// The MoE router: gating, selection bias, group-limited top-k, weight normalisation and scale,
// ties; against hand-worked cases and a brute-force router on random inputs.
#include "runtime/arch/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace strata::arch {
namespace {

struct Routed {
    std::vector<int32_t> ids;
    std::vector<float> weights;
};

Routed run(const RouterConfig& c, const std::vector<float>& logits,
           const std::vector<float>* bias = nullptr) {
    Routed r{std::vector<int32_t>(static_cast<size_t>(c.n_used)),
             std::vector<float>(static_cast<size_t>(c.n_used))};
    route(c, logits.data(), bias ? bias->data() : nullptr, r.ids.data(), r.weights.data());
    return r;
}

RouterConfig config(int64_t n, int64_t k) {
    RouterConfig c;
    c.n_expert = n;
    c.n_used = k;
    return c;
}

TEST(Router, SoftmaxTopKWithoutNormalisation) {
    const RouterConfig c = config(5, 2);
    const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.5f, 0.0f};
    const Routed r = run(c, logits);
    EXPECT_EQ(r.ids, (std::vector<int32_t>{1, 3}));
    double z = 0.0;
    for (float l : logits) z += std::exp(double{l});
    EXPECT_NEAR(r.weights[0], std::exp(2.0) / z, 1e-6);
    EXPECT_NEAR(r.weights[1], std::exp(1.5) / z, 1e-6);
}

TEST(Router, TiesGoToTheLowerIndex) {
    const RouterConfig c = config(6, 3);
    const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 1.0f, 3.0f, 1.0f};
    EXPECT_EQ(run(c, logits).ids, (std::vector<int32_t>{1, 2, 4}));
    const std::vector<float> flat(6, 0.25f);
    EXPECT_EQ(run(c, flat).ids, (std::vector<int32_t>{0, 1, 2}));
}

TEST(Router, BiasSteersSelectionButNotWeights) {
    RouterConfig c = config(4, 2);
    c.gating = Gating::Sigmoid;
    const std::vector<float> logits = {2.0f, 1.0f, 0.0f, -3.0f};
    const std::vector<float> bias = {0.0f, 0.0f, 0.0f, 5.0f};  // drags expert 3 in
    const Routed r = run(c, logits, &bias);
    EXPECT_EQ(r.ids, (std::vector<int32_t>{3, 0}));
    EXPECT_NEAR(r.weights[0], 1.0 / (1.0 + std::exp(3.0)), 1e-7);  // unbiased sigmoid(-3)
    EXPECT_NEAR(r.weights[1], 1.0 / (1.0 + std::exp(-2.0)), 1e-7);
}

TEST(Router, GroupsKeepOnlyTheBestGroupsByTheirTopTwo) {
    // 3 groups of 3. Group 0 has the single best expert but a weak second; group 1 and 2 have
    // better top-two sums, so with one group kept only group 1 (sum 1.7) can contribute.
    RouterConfig c = config(9, 2);
    c.gating = Gating::Sigmoid;
    c.n_group = 3;
    c.n_group_used = 1;
    const auto logit = [](double p) { return static_cast<float>(std::log(p / (1.0 - p))); };
    const std::vector<float> logits = {logit(0.95), logit(0.05), logit(0.05),
                                       logit(0.90), logit(0.80), logit(0.10),
                                       logit(0.85), logit(0.70), logit(0.60)};
    const Routed r = run(c, logits);
    EXPECT_EQ(r.ids, (std::vector<int32_t>{3, 4}));
    c.n_group_used = 2;  // groups 1 (1.70) and 2 (1.55) beat group 0 (1.00)
    EXPECT_EQ(run(c, logits).ids, (std::vector<int32_t>{3, 6}));
}

TEST(Router, GroupScoresUseTheBiasedScores) {
    RouterConfig c = config(4, 1);
    c.gating = Gating::Sigmoid;
    c.n_group = 2;
    c.n_group_used = 1;
    const std::vector<float> logits = {1.0f, 1.0f, 0.0f, 0.0f};
    const std::vector<float> bias = {0.0f, 0.0f, 0.4f, 0.4f};  // group 1 wins only with the bias
    const Routed r = run(c, logits, &bias);
    EXPECT_EQ(r.ids, (std::vector<int32_t>{2}));
    EXPECT_NEAR(r.weights[0], 0.5, 1e-7);
}

TEST(Router, NormaliseThenScale) {
    RouterConfig c = config(4, 2);
    c.gating = Gating::Sigmoid;
    c.norm = true;
    c.scale = 2.5f;
    const std::vector<float> logits = {0.0f, 1.0f, -1.0f, 2.0f};
    const Routed r = run(c, logits);
    const double p3 = 1.0 / (1.0 + std::exp(-2.0)), p1 = 1.0 / (1.0 + std::exp(-1.0));
    EXPECT_EQ(r.ids, (std::vector<int32_t>{3, 1}));
    EXPECT_NEAR(r.weights[0], 2.5 * p3 / (p3 + p1), 1e-6);
    EXPECT_NEAR(r.weights[1], 2.5 * p1 / (p3 + p1), 1e-6);
}

TEST(Router, NormalisationSumIsClamped) {
    RouterConfig c = config(3, 2);
    c.gating = Gating::Sigmoid;
    c.norm = true;
    const std::vector<float> logits = {-30.0f, -31.0f, -40.0f};  // probabilities ~1e-13
    const Routed r = run(c, logits);
    const double p0 = 1.0 / (1.0 + std::exp(30.0));
    // Divided by the clamp 6.1e-5, not by their tiny sum: the weights stay tiny.
    EXPECT_NEAR(r.weights[0], p0 / 6.103515625e-5, 1e-12);
    EXPECT_LT(r.weights[0] + r.weights[1], 1e-6);
}

// The router spelled out as sorting on random inputs: every configuration of gating, bias,
// groups, normalisation and scale.
TEST(Router, MatchesBruteForceOnRandomInputs) {
    std::mt19937_64 rng(42);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    for (int trial = 0; trial < 500; ++trial) {
        const int64_t groups = 1 + static_cast<int64_t>(rng() % 4);
        const int64_t per = 1 + static_cast<int64_t>(rng() % 5);
        const int64_t n = groups * per;
        RouterConfig c = config(n, 1);
        c.n_group = groups;
        c.n_group_used = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(groups));
        c.n_used = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(c.n_group_used * per));
        c.gating = rng() % 2 ? Gating::Sigmoid : Gating::Softmax;
        c.norm = rng() % 2;
        c.scale = rng() % 2 ? 1.0f : 2.5f;
        std::vector<float> logits(static_cast<size_t>(n)), bias(static_cast<size_t>(n));
        for (float& l : logits) l = nd(rng);
        for (float& b : bias) b = 0.1f * nd(rng);
        const bool use_bias = rng() % 2;
        SCOPED_TRACE(trial);

        std::vector<double> p(static_cast<size_t>(n));
        double z = 0.0;
        for (int64_t e = 0; e < n; ++e) z += std::exp(double{logits[e]});
        for (int64_t e = 0; e < n; ++e) {
            p[e] = c.gating == Gating::Softmax ? std::exp(double{logits[e]}) / z
                                               : 1.0 / (1.0 + std::exp(-double{logits[e]}));
        }
        std::vector<double> sel = p;
        if (use_bias)
            for (int64_t e = 0; e < n; ++e) sel[e] += bias[e];
        std::vector<std::pair<double, int64_t>> gs;
        for (int64_t g = 0; g < groups; ++g) {
            std::vector<double> s(sel.begin() + g * per, sel.begin() + (g + 1) * per);
            std::sort(s.rbegin(), s.rend());
            gs.push_back({s[0] + (per > 1 ? s[1] : 0.0), g});
        }
        std::stable_sort(gs.begin(), gs.end(), [](auto& a, auto& b) { return a.first > b.first; });
        std::vector<int64_t> cand;
        for (int64_t i = 0; i < c.n_group_used; ++i)
            for (int64_t e = 0; e < per; ++e) cand.push_back(gs[i].second * per + e);
        std::sort(cand.begin(), cand.end());
        std::stable_sort(cand.begin(), cand.end(),
                         [&](int64_t a, int64_t b) { return sel[a] > sel[b]; });
        double sum = 0.0;
        for (int64_t i = 0; i < c.n_used; ++i) sum += p[cand[i]];

        const Routed r = run(c, logits, use_bias ? &bias : nullptr);
        for (int64_t i = 0; i < c.n_used; ++i) {
            ASSERT_EQ(r.ids[i], cand[i]) << "slot " << i;
            double w = p[cand[i]];
            if (c.norm) w /= std::max(sum, 6.103515625e-5);
            EXPECT_NEAR(r.weights[i], w * c.scale, 1e-5 * std::max(1.0, w * c.scale));
        }
    }
}

}  // namespace
}  // namespace strata::arch
