// Sessions sharing one Engine, decoded together (Session::decode_batch): every row's logits are
// bit for bit (memcmp) what the same session decoded alone gives, whatever the other rows are —
// on the golden deepseek2 and llama models, on synthesized qwen2 and legacy-MLA deepseek2 models,
// and under a RAM budget whose expert cache the sessions share. Errors refuse the whole step
// before anything is evaluated.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "offload/expert_cache.h"
#include "runtime/engine.h"
#include "runtime/error.h"
#include "runtime/expert_table.h"
#include "runtime/gguf.h"
#include "runtime/session.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr int kSeqs = 5;
constexpr int kSteps = 6;

bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

// The greedy next token of a row, so that the sequences go where the model takes them.
int32_t argmax(std::span<const float> row) {
    return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// kSeqs sequences with prompts of different lengths (each at its own position), decoded kSteps
// steps: together on one engine (`shared`, which may carry a budget), and each alone on an
// engine of its own (`alone`). Some steps leave rows out, so the batch changes size and order.
void expect_batch_equals_alone(const Model& model, const SessionOptions& shared,
                               const SessionOptions& alone, const std::string& what) {
    const int64_t vocab = model.hparams().n_vocab;
    auto engine = std::make_shared<Engine>(model, shared, kSeqs);
    std::vector<std::unique_ptr<Session>> batched, single;
    std::vector<int32_t> next(kSeqs);
    for (int i = 0; i < kSeqs; ++i) {
        batched.push_back(std::make_unique<Session>(engine));
        single.push_back(std::make_unique<Session>(model, alone));
        const std::vector<int32_t> prompt =
            test::random_tokens(3 + 4 * i, vocab, static_cast<uint64_t>(100 + i));
        const std::span<const float> a = batched.back()->prefill(prompt);
        const std::span<const float> b = single.back()->prefill(prompt);
        ASSERT_TRUE(same_bits(a, b)) << what << ": prefill of sequence " << i;
        next[static_cast<size_t>(i)] = argmax(b);
    }
    ASSERT_EQ(engine.use_count(), kSeqs + 1);
    std::vector<float> logits;
    for (int step = 0; step < kSteps; ++step) {
        // Step 2 leaves out sequence 1, step 4 runs the rows in reverse: rows must not depend on
        // who else is in the batch or where.
        std::vector<int> order;
        for (int i = 0; i < kSeqs; ++i)
            if (!(step == 2 && i == 1)) order.push_back(i);
        if (step == 4) std::reverse(order.begin(), order.end());
        std::vector<Session*> sessions;
        std::vector<int32_t> tokens;
        for (const int i : order) {
            sessions.push_back(batched[static_cast<size_t>(i)].get());
            tokens.push_back(next[static_cast<size_t>(i)]);
        }
        Session::decode_batch(sessions, tokens, logits);
        ASSERT_EQ(logits.size(), order.size() * static_cast<size_t>(vocab));
        for (size_t r = 0; r < order.size(); ++r) {
            const auto i = static_cast<size_t>(order[r]);
            const std::span<const float> want = single[i]->decode({&next[i], 1});
            const std::span<const float> got(logits.data() + r * static_cast<size_t>(vocab),
                                             static_cast<size_t>(vocab));
            ASSERT_TRUE(same_bits(got, want)) << what << ": step " << step << ", sequence " << i
                                              << " in row " << r << " of " << order.size();
            ASSERT_EQ(batched[i]->tokens(), single[i]->tokens());
            next[i] = argmax(want);
        }
    }
}

void expect_batch_equals_alone(const Model& model, const std::string& what) {
    SessionOptions so;
    so.n_ctx = 48;
    expect_batch_equals_alone(model, so, so, what);
}

Model load(const fs::path& path) {
    return Model::load(gguf::File::open(path.string()));
}

TEST(SessionBatch, GoldenDeepseek2AndLlamaSameBitsAsAlone) {
    STRATA_REQUIRE_GOLDEN();
    for (const char* name : {"deepseek2.Q4_K_M.gguf", "deepseek2.f32.gguf",
                             "deepseek2-legacy.f32.gguf", "llama.Q4_K_M.gguf", "llama.f32.gguf"}) {
        const Model model = load(test::golden_dir() / "models" / name);
        expect_batch_equals_alone(model, name);
    }
}

TEST(SessionBatch, SynthesizedShapesSameBitsAsAlone) {
    const test::TempDir dir;
    // qwen2 (q/k/v biases, Q8_0 weights, tied output) and a deepseek2 with the legacy attn_kv_b,
    // more experts than the golden ones and no lora on q.
    test::TinySpec qwen;
    qwen.arch = Arch::Qwen2;
    qwen.n_embd = 96;
    qwen.n_head = 6;
    qwen.n_head_kv = 3;
    qwen.tied = true;
    qwen.type = quant::Type::Q8_0;
    test::TinySpec mla;
    mla.arch = Arch::DeepSeek2;
    mla.n_layer = 3;
    mla.n_expert = 8;
    mla.n_expert_used = 3;
    mla.legacy_kv_b = true;
    mla.gating = Gating::Sigmoid;
    mla.probs_bias = true;
    mla.weights_norm = true;
    int k = 0;
    for (const test::TinySpec& spec : {qwen, mla}) {
        const fs::path path = dir / ("m" + std::to_string(k++) + ".gguf");
        const Model model = test::load_tiny_model(spec, path);
        expect_batch_equals_alone(model, std::string(arch_name(spec.arch)) + " tiny");
    }
}

TEST(SessionBatch, SharedExpertCacheUnderABudgetSameBitsAsAlone) {
    STRATA_REQUIRE_GOLDEN();
    const Model model = load(test::golden_dir() / "models" / "deepseek2.Q4_K_M.gguf");
    SessionOptions alone;
    alone.n_ctx = 48;
    SessionOptions shared = alone;
    // Room for the resident part, every sequence's cache and two expert slots: experts are
    // evicted and read again between the rows of one step.
    const offload::ExpertStore store(expert_table(model));
    const uint64_t kv = Session(model, alone).cache_bytes();
    shared.ram_budget = store.resident_bytes() + kSeqs * kv +
                        Engine(model, alone, kSeqs).workspace_bytes() + 2 * store.slot_bytes();
    shared.reader.quiet = true;
    expect_batch_equals_alone(model, shared, alone, "deepseek2.Q4_K_M under a budget");
    // A budget that holds one cache but not kSeqs is refused when the engine is made.
    SessionOptions tight = alone;
    tight.ram_budget = store.resident_bytes() + kv + Engine(model, alone, 1).workspace_bytes() +
                       2 * store.slot_bytes();
    tight.reader.quiet = true;
    EXPECT_NO_THROW(Engine(model, tight, 1));
    EXPECT_THROW(Engine(model, tight, kSeqs), Error);
}

class SessionBatchErrors : public ::testing::Test {
  protected:
    void SetUp() override {
        test::TinySpec s;
        s.arch = Arch::Llama;
        model_ = std::make_unique<Model>(test::load_tiny_model(s, dir_ / "m.gguf"));
        SessionOptions so;
        so.n_ctx = 8;
        engine_ = std::make_shared<Engine>(*model_, so, 2);
        a_ = std::make_unique<Session>(engine_);
        b_ = std::make_unique<Session>(engine_);
        a_->decode(test::random_tokens(3, 97, 1));
        b_->decode(test::random_tokens(7, 97, 2));
    }
    // Expects decode_batch to throw an error containing `needle` and to change nothing.
    void expect_refused(std::vector<Session*> sessions, std::vector<int32_t> tokens,
                        const std::string& needle) {
        std::vector<float> logits;
        try {
            Session::decode_batch(sessions, tokens, logits);
            ADD_FAILURE() << "expected an error containing '" << needle << "'";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
        EXPECT_EQ(a_->n_past(), 3);
        EXPECT_EQ(b_->n_past(), 7);
    }
    test::TempDir dir_;
    std::unique_ptr<Model> model_;
    std::shared_ptr<Engine> engine_;
    std::unique_ptr<Session> a_, b_;
};

TEST_F(SessionBatchErrors, RefusedBeforeAnyWork) {
    expect_refused({a_.get(), b_.get()}, {5, 97}, "row 1: token id 97 is outside the vocabulary");
    expect_refused({a_.get(), b_.get()}, {-1, 5}, "row 0: token id -1");
    expect_refused({a_.get(), a_.get()}, {1, 2}, "rows 0 and 1 are the same session");
    expect_refused({a_.get()}, {1, 2}, "1 sessions and 2 tokens");
    Session other(*model_, {.n_ctx = 8});
    expect_refused({a_.get(), &other}, {1, 2}, "different engines");
    // b_ has room for one more token: it fits, then the next step overflows with a clear error.
    std::vector<float> logits;
    Session::decode_batch(std::vector<Session*>{a_.get(), b_.get()}, std::vector<int32_t>{1, 2},
                          logits);
    EXPECT_EQ(b_->n_past(), 8);
    std::vector<Session*> both = {a_.get(), b_.get()};
    std::vector<int32_t> ids = {3, 4};
    try {
        Session::decode_batch(both, ids, logits);
        FAIL() << "expected a context overflow";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("context overflow in row 1"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("--ctx 8"), std::string::npos) << e.what();
    }
    EXPECT_EQ(a_->n_past(), 4);
    // An empty batch does nothing.
    Session::decode_batch({}, {}, logits);
    EXPECT_TRUE(logits.empty());
}

}  // namespace
}  // namespace strata
