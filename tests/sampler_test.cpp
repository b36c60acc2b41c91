// The sampler: greedy and ties, every filter on hand-made logits, draws against their
// probabilities, seeds, the repetition penalty, per-model defaults and parameter checks.
#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "runtime/error.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

SamplerParams plain(float temperature) {
    SamplerParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1234;
    return p;
}

std::map<int32_t, int> histogram(Sampler& s, const std::vector<float>& logits, int draws) {
    std::map<int32_t, int> h;
    for (int i = 0; i < draws; ++i) ++h[s.sample(logits)];
    return h;
}

TEST(Sampler, GreedyTakesTheLargestLowestIdOnTies) {
    Sampler s(plain(0.0f));
    EXPECT_EQ(s.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 2.0f}), 1);
    EXPECT_EQ(s.sample(std::vector<float>{-3.0f, -2.0f, -2.5f}), 1);
}

TEST(Sampler, DrawsFollowTheTemperedDistribution) {
    const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
    for (float temp : {0.5f, 1.0f, 2.0f}) {
        Sampler s(plain(temp));
        const int n = 20000;
        const auto h = histogram(s, logits, n);
        double z = 0.0;
        for (float l : logits) z += std::exp(l / temp);
        for (int32_t id = 0; id < 3; ++id) {
            const double p = std::exp(logits[id] / temp) / z;
            // 5 standard deviations of a binomial count.
            EXPECT_NEAR(h.count(id) ? h.at(id) : 0, p * n, 5 * std::sqrt(n * p * (1 - p)) + 1)
                << "temperature " << temp << " id " << id;
        }
    }
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
    std::vector<float> logits(50);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i));
    auto run = [&](uint64_t seed) {
        SamplerParams p = plain(1.5f);
        p.seed = seed;
        Sampler s(p);
        std::vector<int32_t> out;
        for (int i = 0; i < 64; ++i) out.push_back(s.sample(logits));
        return out;
    };
    EXPECT_EQ(run(7), run(7));
    EXPECT_NE(run(7), run(8));
    SamplerParams p = plain(1.5f);
    p.seed = 7;
    Sampler s(p);
    const int32_t first = s.sample(logits);
    s.reset();  // back to the seed's first draw
    EXPECT_EQ(s.sample(logits), first);
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
    SamplerParams p = plain(5.0f);  // hot, so that without the filter every token would appear
    p.top_k = 2;
    Sampler s(p);
    const auto h = histogram(s, {1.0f, 3.0f, 0.5f, 2.9f, -1.0f}, 2000);
    EXPECT_EQ(h.size(), 2u);
    EXPECT_TRUE(h.count(1) && h.count(3));
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
    // Probabilities 0.5, 0.25, 0.125, 0.125 at temperature 1.
    const std::vector<float> logits = {std::log(0.5f), std::log(0.25f), std::log(0.125f),
                                       std::log(0.125f)};
    SamplerParams p = plain(1.0f);
    p.top_p = 0.7f;  // 0.5 + 0.25 reaches it
    Sampler s(p);
    const auto h = histogram(s, logits, 3000);
    EXPECT_EQ(h.size(), 2u);
    EXPECT_TRUE(h.count(0) && h.count(1));
    p.top_p = 0.5f;  // the first alone reaches it
    Sampler one(p);
    EXPECT_EQ(histogram(one, logits, 200).size(), 1u);
}

TEST(Sampler, MinPDropsTokensFarBelowTheBest) {
    const std::vector<float> logits = {std::log(0.6f), std::log(0.3f), std::log(0.07f),
                                       std::log(0.03f)};
    SamplerParams p = plain(1.0f);
    p.min_p = 0.1f;  // keeps p ≥ 0.06
    Sampler s(p);
    const auto h = histogram(s, logits, 4000);
    EXPECT_EQ(h.size(), 3u);
    EXPECT_FALSE(h.count(3));
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
    SamplerParams p = plain(0.0f);
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2;
    Sampler s(p);
    const std::vector<float> logits = {3.0f, 2.0f, -0.5f, -1.1f};
    EXPECT_EQ(s.sample(logits), 0);
    s.accept(0);  // 3 → 1.5: now below 2
    EXPECT_EQ(s.sample(logits), 1);
    s.accept(1);  // both penalised: 1.5 vs 1.0
    EXPECT_EQ(s.sample(logits), 0);
    s.accept(2);  // the window of 2 forgets token 0: 3.0 again
    EXPECT_EQ(s.sample(logits), 0);
    Sampler neg(p);
    const std::vector<float> negative = {-1.0f, -1.5f};
    neg.accept(0);  // -1 → -2: token 1 wins
    EXPECT_EQ(neg.sample(negative), 1);
}

TEST(Sampler, RejectsParametersOutOfRange) {
    SamplerParams p = plain(1.0f);
    p.top_p = 0.0f;
    EXPECT_THROW(Sampler{p}, Error);
    p = plain(1.0f);
    p.min_p = 1.5f;
    EXPECT_THROW(Sampler{p}, Error);
    p = plain(1.0f);
    p.top_k = -1;
    EXPECT_THROW(Sampler{p}, Error);
    p = plain(1.0f);
    p.repeat_penalty = 0.0f;
    EXPECT_THROW(Sampler{p}, Error);
    p = plain(NAN);
    EXPECT_THROW(Sampler{p}, Error);
    Sampler s(plain(1.0f));
    EXPECT_THROW(s.sample({}), Error);
}

TEST(Sampler, DeepSeekReasoningModelsDefaultTo06And095) {
    test::TempDir dir;
    test::TinySpec r1;
    r1.name = "DeepSeek R1 Distill Qwen 7B";
    r1.arch = Arch::Qwen2;
    const Model distill = test::load_tiny_model(r1, dir / "r1.gguf");
    EXPECT_TRUE(is_reasoning_model(distill));
    const SamplerParams d = default_sampling(distill);
    EXPECT_FLOAT_EQ(d.temperature, 0.6f);
    EXPECT_FLOAT_EQ(d.top_p, 0.95f);

    test::TinySpec other;
    other.name = "Llama 3.1 8B Instruct";
    const Model llama = test::load_tiny_model(other, dir / "l.gguf");
    EXPECT_FALSE(is_reasoning_model(llama));
    const SamplerParams l = default_sampling(llama);
    EXPECT_FLOAT_EQ(l.temperature, 0.8f);
    EXPECT_EQ(l.top_k, 40);
}

}  // namespace
}  // namespace strata
