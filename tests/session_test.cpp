// Sessions: prefill-then-decode against one long prefill, batch sizes, cache reuse across calls,
// context overflow and bad input.
//
// Bound: a token's logits do not depend on how the tokens before it were batched except through
// the float summation order of the attention's weighted sum (the reference's order follows the
// batch's cache length, attention.h), which moves logits by float rounding only: max_rel ≤ 1e-5
// (measured ≤ 1e-6).
#include "runtime/session.h"

#include <gtest/gtest.h>

#include <random>

#include "runtime/error.h"
#include "tests/reference_forward.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

test::TinySpec deepseek_spec() {
    test::TinySpec s;
    s.arch = Arch::DeepSeek2;
    s.seed = 3;
    s.q_lora = 24;
    s.n_group = 2;
    s.n_group_used = 1;
    s.gating = Gating::Sigmoid;
    s.probs_bias = true;
    s.weights_norm = true;
    s.yarn_factor = 4.0f;
    return s;
}

class SessionArch : public ::testing::TestWithParam<Arch> {
  protected:
    void SetUp() override {
        test::TinySpec s;
        if (GetParam() == Arch::DeepSeek2) s = deepseek_spec();
        s.arch = GetParam();
        model_ = std::make_unique<Model>(test::load_tiny_model(s, dir_ / "m.gguf"));
        vocab_ = s.n_vocab;
    }
    test::TempDir dir_;
    std::unique_ptr<Model> model_;
    int64_t vocab_ = 0;
};

TEST_P(SessionArch, PrefillThenDecodeMatchesOneLongPrefill) {
    const std::vector<int32_t> ids = test::random_tokens(70, vocab_, 5);
    Session whole(*model_, {.n_ctx = 80});
    std::vector<float> all;
    whole.decode_all(ids, all);

    Session stepwise(*model_, {.n_ctx = 80});
    const size_t prompt = 23;
    std::span<const float> last = stepwise.prefill(std::span(ids).first(prompt));
    EXPECT_LE(test::row_max_rel(last.data(), all.data() + (prompt - 1) * vocab_, vocab_), 1e-5);
    for (size_t t = prompt; t < ids.size(); ++t) {
        last = stepwise.decode(std::span(ids).subspan(t, 1));
        ASSERT_LE(test::row_max_rel(last.data(), all.data() + t * vocab_, vocab_), 1e-5)
            << "token " << t;
    }
    EXPECT_EQ(stepwise.n_past(), 70);
    EXPECT_EQ(stepwise.tokens(), ids);
}

TEST_P(SessionArch, SmallBatchesMatchOneBatch) {
    const std::vector<int32_t> ids = test::random_tokens(37, vocab_, 6);
    std::vector<float> one, pieces;
    Session a(*model_, {.n_ctx = 40});
    a.decode_all(ids, one);
    Session b(*model_, {.n_ctx = 40, .n_batch = 5});
    b.decode_all(ids, pieces);
    ASSERT_EQ(one.size(), pieces.size());
    for (int64_t t = 0; t < 37; ++t)
        EXPECT_LE(test::row_max_rel(pieces.data() + t * vocab_, one.data() + t * vocab_, vocab_),
                  1e-5);
}

TEST_P(SessionArch, ReusesTheCommonPrefix) {
    const std::vector<int32_t> first = test::random_tokens(30, vocab_, 7);
    std::vector<int32_t> second(first.begin(), first.begin() + 18);
    for (int32_t id : test::random_tokens(9, vocab_, 8)) second.push_back(id);

    Session s(*model_, {.n_ctx = 64});
    s.prefill(first);
    EXPECT_EQ(s.reused(), 0);
    const std::vector<float> got(s.prefill(second).begin(), s.prefill(second).end());
    // The second call of the same prompt keeps all but the last token.
    EXPECT_EQ(s.reused(), static_cast<int64_t>(second.size()) - 1);
    EXPECT_EQ(s.tokens(), second);

    Session fresh(*model_, {.n_ctx = 64});
    std::span<const float> want = fresh.prefill(second);
    EXPECT_LE(test::row_max_rel(got.data(), want.data(), vocab_), 1e-5);

    Session t(*model_, {.n_ctx = 64});
    t.prefill(first);
    t.prefill(second);
    EXPECT_EQ(t.reused(), 18);
}

TEST_P(SessionArch, LogitsMatchTheReference) {
    const std::vector<int32_t> ids = test::random_tokens(12, vocab_, 9);
    Session s(*model_, {.n_ctx = 12});
    std::vector<float> out;
    s.decode_all(ids, out);
    const std::vector<double> ref = test::ReferenceForward(*model_).logits(ids);
    for (int64_t t = 0; t < 12; ++t)
        EXPECT_LE(test::row_max_rel(out.data() + t * vocab_, ref.data() + t * vocab_, vocab_),
                  1e-4);
}

INSTANTIATE_TEST_SUITE_P(Archs, SessionArch,
                         ::testing::Values(Arch::Llama, Arch::Qwen2, Arch::DeepSeek2),
                         [](const auto& p) { return std::string(arch_name(p.param)); });

class SessionErrors : public ::testing::Test {
  protected:
    void SetUp() override {
        model_ = std::make_unique<Model>(test::load_tiny_model(deepseek_spec(), dir_ / "m.gguf"));
    }
    test::TempDir dir_;
    std::unique_ptr<Model> model_;
};

TEST_F(SessionErrors, ContextOverflowIsRefusedBeforeAnyWork) {
    Session s(*model_, {.n_ctx = 8});
    s.decode(test::random_tokens(6, 97, 1));
    try {
        s.decode(test::random_tokens(3, 97, 2));
        FAIL() << "expected a context overflow";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("context overflow"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--ctx 8"), std::string::npos) << e.what();
    }
    EXPECT_EQ(s.n_past(), 6);                 // nothing evaluated
    s.decode(test::random_tokens(2, 97, 3));  // what fits still does
    EXPECT_EQ(s.n_past(), 8);
    EXPECT_THROW(s.decode(test::random_tokens(1, 97, 4)), Error);
    EXPECT_THROW(s.prefill(test::random_tokens(9, 97, 5)), Error);
}

TEST_F(SessionErrors, BadTokensAndArguments) {
    Session s(*model_, {.n_ctx = 16});
    const std::vector<int32_t> bad = {1, 2, 97};
    EXPECT_THROW(s.decode(bad), Error);
    const std::vector<int32_t> negative = {-1};
    EXPECT_THROW(s.decode(negative), Error);
    EXPECT_EQ(s.n_past(), 0);
    EXPECT_THROW(s.decode({}), Error);
    EXPECT_THROW(s.truncate(1), Error);
    EXPECT_THROW(Session(*model_, {.n_ctx = -3}), Error);
    EXPECT_THROW(Session(*model_, {.n_ctx = 4, .n_batch = 0}), Error);
}

TEST_F(SessionErrors, DefaultContextIsBounded) {
    const Session s(*model_);
    EXPECT_EQ(s.n_ctx(), 4096);  // the file says 4096; the default never exceeds 4096
    EXPECT_GT(s.cache_bytes(), 0u);
    // MLA: one compressed row per token and layer (and its latent transposed), not per-head
    // keys and values.
    const HParams& hp = model_->hparams();
    EXPECT_EQ(s.cache_bytes(),
              static_cast<size_t>(hp.n_layer * 4096 * (2 * hp.kv_lora_rank + hp.qk_rope)) *
                  sizeof(float));
}

}  // namespace
}  // namespace strata
