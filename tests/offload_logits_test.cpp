// Under --ram-budget a deepseek2 model computes exactly what it computes from the mapping: the
// same logits, bit for bit, for every budget from one expert slot to every expert, every policy,
// io_uring and pread, prompts in one batch or several, and decoding.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "offload/expert_cache.h"
#include "runtime/error.h"
#include "runtime/engine.h"
#include "runtime/expert_table.h"
#include "runtime/session.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

// Every logit of a prompt (n_batch tokens per pass) and of n_decode greedy steps after it.
std::vector<float> run_logits(const Model& model, SessionOptions so,
                              const std::vector<int32_t>& prompt, int n_decode) {
    Session s(model, so);
    std::vector<float> all;
    s.decode_all(prompt, all);
    const auto vocab = static_cast<size_t>(s.n_vocab());
    for (int i = 0; i < n_decode; ++i) {
        const auto last = all.end() - static_cast<ptrdiff_t>(vocab);
        const auto id = static_cast<int32_t>(std::max_element(last, all.end()) - last);
        const std::span<const float> l = s.decode({&id, 1});
        all.insert(all.end(), l.begin(), l.end());
    }
    if (const offload::ExpertCache* c = s.expert_cache()) {
        EXPECT_GT(c->stats().hits + c->stats().misses, 0u);
    }
    return all;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Budgets for 1 slot, one per MoE layer, n_used, half the experts and all of them, beside the
// resident weights and `fixed_bytes` (the KV cache and the forward pass's workspace).
std::vector<uint64_t> budgets(const Model& model, uint64_t fixed_bytes) {
    const offload::ExpertStore store(expert_table(model));
    const HParams& hp = model.hparams();
    const int64_t n_moe = hp.n_layer - hp.n_dense_lead;
    std::vector<uint64_t> out;
    for (const int64_t slots :
         {int64_t{1}, n_moe, hp.n_expert_used, store.n_routed() / 2, store.n_routed()})
        out.push_back(store.resident_bytes() + fixed_bytes +
                      static_cast<uint64_t>(slots) * store.slot_bytes());
    return out;
}

// Runs the model without a budget and under every budget and policy; expects the same bits.
void expect_same_logits(const fs::path& path, int64_t n_batch, bool all_policies) {
    const Model model = Model::load(gguf::File::open(path.string()));
    const std::vector<int32_t> prompt = test::random_tokens(7, model.hparams().n_vocab, 3);
    SessionOptions so;
    so.n_ctx = 32;
    so.n_batch = n_batch;
    const std::vector<float> want = run_logits(model, so, prompt, 4);
    const Session probe(model, so);
    const uint64_t fixed_bytes = probe.cache_bytes() + probe.engine().workspace_bytes();
    const test::TempDir dir;
    const std::string profile = (dir / "hot.txt").string();
    std::ofstream(profile) << model.hparams().n_dense_lead << " 0\n"
                           << model.hparams().n_layer - 1 << " 1\n";
    for (const uint64_t budget : budgets(model, fixed_bytes)) {
        for (const offload::Policy policy :
             {offload::Policy::Lru, offload::Policy::Lfu, offload::Policy::Pinned}) {
            if (!all_policies && policy != offload::Policy::Lru) continue;
            for (const bool pread : {false, true}) {
                SessionOptions b = so;
                b.ram_budget = budget;
                b.cache_policy = policy;
                b.hot_profile = profile;
                b.reader.force_pread = pread;
                b.reader.quiet = true;
                EXPECT_TRUE(bit_identical(want, run_logits(model, b, prompt, 4)))
                    << path.filename() << " budget " << budget << " policy "
                    << offload::policy_name(policy) << (pread ? " pread" : " io_uring")
                    << " n_batch " << n_batch;
            }
        }
    }
}

test::TinySpec tiny_moe(quant::Type type, bool legacy) {
    test::TinySpec s;
    s.arch = Arch::DeepSeek2;
    s.n_layer = 3;
    s.n_dense_lead = 1;
    s.n_expert = 8;
    s.n_expert_used = 3;
    s.type = type;
    s.legacy_kv_b = legacy;
    s.probs_bias = true;
    s.gating = Gating::Sigmoid;
    s.weights_norm = true;
    return s;
}

TEST(OffloadLogits, SynthesizedModelsSameBitsUnderEveryBudget) {
    const test::TempDir dir;
    for (const quant::Type type : {quant::Type::F32, quant::Type::Q8_0}) {
        for (const bool legacy : {false, true}) {
            const fs::path path = dir / "tiny.gguf";
            test::write_tiny_model(tiny_moe(type, legacy), path);
            expect_same_logits(path, 512, true);  // the prompt in one batch
            expect_same_logits(path, 3, false);   // in three
        }
    }
}

TEST(OffloadLogits, GoldenDeepseek2ModelsSameBitsUnderEveryBudget) {
    STRATA_REQUIRE_GOLDEN();
    int n = 0;
    for (const auto& entry : fs::directory_iterator(test::golden_dir() / "models")) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("deepseek2", 0) != 0 || entry.path().extension() != ".gguf") continue;
        expect_same_logits(entry.path(), 512, name.find("Q4_K_M") != std::string::npos);
        ++n;
    }
    EXPECT_GT(n, 0) << "no deepseek2 model in the golden set";
}

TEST(OffloadLogits, BudgetBelowTheResidentPartIsRefused) {
    const test::TempDir dir;
    const fs::path path = dir / "tiny.gguf";
    test::write_tiny_model(tiny_moe(quant::Type::F32, false), path);
    const Model model = Model::load(gguf::File::open(path.string()));
    SessionOptions so;
    so.n_ctx = 32;
    so.ram_budget = 4096;
    try {
        Session s(model, so);
        FAIL() << "a 4 KiB budget was accepted";
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("--ram-budget"), std::string::npos) << m;
        EXPECT_NE(m.find("minimum budget"), std::string::npos) << m;
    }
    // A dense model is held whole: the file and the KV cache must fit.
    test::TinySpec dense;
    test::write_tiny_model(dense, dir / "dense.gguf");
    const Model llama = Model::load(gguf::File::open((dir / "dense.gguf").string()));
    EXPECT_THROW(Session(llama, so), Error);
    so.ram_budget = uint64_t{1} << 30;
    Session fits(llama, so);
    EXPECT_EQ(fits.expert_cache(), nullptr);
}

TEST(OffloadLogits, ManySessionsLeakNoDescriptors) {
    const test::TempDir dir;
    const fs::path path = dir / "tiny.gguf";
    test::write_tiny_model(tiny_moe(quant::Type::Q8_0, false), path);
    const auto count_fds = [] {
        size_t n = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
        return n;
    };
    const size_t before = count_fds();
    for (int i = 0; i < 30; ++i) {
        const Model model = Model::load(gguf::File::open(path.string()));
        SessionOptions so;
        so.n_ctx = 16;
        so.ram_budget = uint64_t{64} << 20;
        so.reader.force_pread = i % 2 == 0;
        so.reader.quiet = true;
        Session s(model, so);
        const int32_t ids[] = {1, 2, 3};
        s.decode(ids);
    }
    EXPECT_EQ(count_fds(), before);
}

TEST(OffloadCli, BenchReportsCacheFigures) {
    const test::TempDir dir;
    const fs::path path = dir / "tiny.gguf";
    test::write_tiny_model(tiny_moe(quant::Type::Q8_0, false), path);
    const test::CommandResult r = test::run_strata(
        "bench -m " + path.string() + " -p 8 -n 6 --ram-budget 64M --cache-policy lfu --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    for (const char* key : {"hit_rate", "bytes_read_per_token", "read_gbps", "stall_ms_per_token",
                            "prefetch_accuracy", "decode_tps", "peak_rss_bytes"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["cache_policy"], "lfu");
    const test::CommandResult small =
        test::run_strata("bench -m " + path.string() + " -p 8 -n 2 --ram-budget 8K");
    EXPECT_EQ(small.status, 1);
    EXPECT_NE(small.err.find("minimum budget"), std::string::npos) << small.err;
    const test::CommandResult bad =
        test::run_strata("bench -m " + path.string() + " --ram-budget 12X");
    EXPECT_EQ(bad.status, 2) << bad.err;
}

}  // namespace
}  // namespace strata
