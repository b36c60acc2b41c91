// strata eval / run / bench from the outside: files, JSON, streaming, exit codes.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "scheduler/routing_profile.h"
#include "tests/reference_forward.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

using nlohmann::json;

json golden_case(const std::string& name) {
    std::ifstream in(test::golden_dir() / "manifest.json");
    const json m = json::parse(in);
    for (const json& c : m["cases"])
        if (c["name"] == name) return c;
    return json();
}

TEST(InferCli, EvalWritesEveryPositionsLogits) {
    STRATA_REQUIRE_GOLDEN();
    const json c = golden_case("llama.f32.p8");
    test::TempDir dir;
    const auto model = test::golden_dir() / c["model"].get<std::string>();
    const auto out = dir / "logits.f32";
    const test::CommandResult r =
        test::run_strata("eval -m " + model.string() + " --tokens " +
                         test::token_list(c["prompt_ids"].get<std::vector<int32_t>>()) + " --out " +
                         out.string() + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string bytes = test::read_file(out);
    const std::string ref = test::read_file(test::golden_dir() / c["logits"].get<std::string>());
    ASSERT_EQ(bytes.size(), ref.size());  // n_tokens × n_vocab float32, no header
    const auto* o = reinterpret_cast<const float*>(bytes.data());
    const auto* g = reinterpret_cast<const float*>(ref.data());
    const int64_t V = c["n_vocab"];
    for (int64_t p = 0; p < c["n_prompt"].get<int64_t>(); ++p)
        EXPECT_LE(test::row_max_rel(o + p * V, g + p * V, V), 1e-5);

    const json j = json::parse(r.out);  // one JSON object on stdout
    EXPECT_EQ(j["n_tokens"], c["n_prompt"]);
    EXPECT_EQ(j["n_vocab"], V);
    EXPECT_EQ(j["arch"], "llama");
    ASSERT_EQ(j["argmax"].size(), c["n_prompt"].get<size_t>());
    EXPECT_EQ(j["argmax"][0].get<int64_t>(), test::row_argmax(g, V));
    EXPECT_GT(j["seconds"].get<double>(), 0.0);
}

TEST(InferCli, RunStreamsTheGreedyIds) {
    STRATA_REQUIRE_GOLDEN();
    const json c = golden_case("qwen2.f32.p8");
    const auto model = test::golden_dir() / c["model"].get<std::string>();
    const test::CommandResult r =
        test::run_strata("run -m " + model.string() + " --tokens " +
                         test::token_list(c["prompt_ids"].get<std::vector<int32_t>>()) +
                         " -n 16 --greedy --ignore-eos");
    ASSERT_EQ(r.status, 0) << r.err;
    std::istringstream in(r.out);
    std::vector<int32_t> ids;
    for (int32_t id; in >> id;) ids.push_back(id);
    EXPECT_EQ(ids, c["greedy_ids"].get<std::vector<int32_t>>());
}

TEST(InferCli, RunReportsAFullContext) {
    test::TempDir dir;
    test::write_tiny_model({}, dir / "m.gguf");
    const test::CommandResult r = test::run_strata("run -m " + (dir / "m.gguf").string() +
                                                   " --tokens 1,2,3,4 --ctx 6 -n 10 --greedy");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("context full"), std::string::npos) << r.err;
    std::istringstream in(r.out);
    int count = 0;
    for (int32_t id; in >> id;) ++count;
    EXPECT_EQ(count, 3);  // two fit after the prompt; the third is shown, then no room is left
}

TEST(InferCli, UsageErrors) {
    test::TempDir dir;
    test::write_tiny_model({}, dir / "m.gguf");
    const std::string m = (dir / "m.gguf").string();
    EXPECT_EQ(test::run_strata("eval -m " + m).status, 2);  // neither --tokens nor --text
    EXPECT_EQ(test::run_strata("eval -m " + m + " --tokens 1,x").status, 2);
    EXPECT_EQ(test::run_strata("eval -m " + m + " --tokens 1,500").status, 1);  // id ≥ n_vocab
    EXPECT_EQ(test::run_strata("run -m " + m + " --tokens 1 -p hi").status, 2);
    EXPECT_EQ(test::run_strata("bench -m " + m + " -p 0").status, 2);
}

TEST(InferCli, BenchJson) {
    test::TempDir dir;
    test::TinySpec s;
    s.arch = Arch::DeepSeek2;
    test::write_tiny_model(s, dir / "m.gguf");
    const test::CommandResult r =
        test::run_strata("bench -m " + (dir / "m.gguf").string() + " -p 16 -n 4 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const json j = json::parse(r.out);
    for (const char* key : {"prefill_tps", "decode_tps", "peak_rss_bytes", "threads"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j["prefill_tps"].get<double>(), 0.0);
    EXPECT_GT(j["decode_tps"].get<double>(), 0.0);
    EXPECT_GT(j["peak_rss_bytes"].get<uint64_t>(), 1u << 20);
    EXPECT_GE(j["threads"].get<int>(), 1);

    // Decoding starts after --depth positions, as llama-bench's tg test, or after the prompt's
    // too with --decode-after-prompt, as llama-batched-bench.
    for (const bool after_prompt : {false, true}) {
        const test::CommandResult d =
            test::run_strata("bench -m " + (dir / "m.gguf").string() + " -p 16 -n 4 --depth 3" +
                             (after_prompt ? " --decode-after-prompt" : ""));
        ASSERT_EQ(d.status, 0) << d.err;
        const std::string want = after_prompt ? "after 19 cached positions" : "after 3 cached";
        EXPECT_NE(d.out.find(want), std::string::npos) << d.out;
    }

    // Without the warm-up pass the text form says none ran; with it, that it did.
    const test::CommandResult cold =
        test::run_strata("bench -m " + (dir / "m.gguf").string() + " -p 16 -n 4 --no-warmup");
    ASSERT_EQ(cold.status, 0) << cold.err;
    EXPECT_EQ(cold.err.find("warm-up"), std::string::npos) << cold.err;
    const test::CommandResult warm =
        test::run_strata("bench -m " + (dir / "m.gguf").string() + " -p 16 -n 4");
    ASSERT_EQ(warm.status, 0) << warm.err;
    EXPECT_NE(warm.err.find("warm-up"), std::string::npos) << warm.err;
}

// bench --routing-profile writes what the forward pass counted: one entry per MoE layer, every
// routing of every pass, in the file `strata plan --usage` reads; --json reports the skew.
TEST(InferCli, BenchWritesTheRoutingProfile) {
    test::TempDir dir;
    test::TinySpec s;
    s.arch = Arch::DeepSeek2;
    s.n_layer = 3;
    s.n_expert = 8;
    s.n_expert_used = 2;
    test::write_tiny_model(s, dir / "m.gguf");
    const std::string profile = (dir / "usage.json").string();
    const test::CommandResult r =
        test::run_strata("bench -m " + (dir / "m.gguf").string() +
                         " -p 16 -n 4 --no-warmup --json --routing-profile " + profile);
    ASSERT_EQ(r.status, 0) << r.err;
    const scheduler::RoutingProfile p = scheduler::read_routing_profile(profile);
    ASSERT_EQ(p.layers.size(), 2u) << "layers 1 and 2 route; layer 0 is dense";
    uint64_t total = 0;
    double top_share = 0.0;  // the most chosen expert's share (10% of 8 experts: one), mean
    for (const scheduler::LayerCounts& l : p.layers) {
        ASSERT_EQ(l.counts.size(), 8u);
        uint64_t layer = 0, most = 0;
        for (uint64_t c : l.counts) {
            layer += c;
            most = std::max(most, c);
        }
        total += layer;
        top_share += static_cast<double>(most) / static_cast<double>(layer) / 2.0;
    }
    // Layer 1 routes the 16 prompt tokens and 4 decoded ones (the last decoded token is sampled
    // from, not run again), layer 2 the prompt's last token and the same 4: two experts each.
    EXPECT_EQ(total, (16u + 4u) * 2u + (1u + 4u) * 2u);
    const double top = json::parse(r.out)["routing_top10_share"].get<double>();
    EXPECT_GE(top, 1.0 / 8.0);  // the most chosen of 8 experts takes at least an eighth
    EXPECT_LE(top, 1.0);
    EXPECT_NEAR(top, top_share, 1e-12);

    const test::CommandResult plan = test::run_strata(
        "plan -m " + (dir / "m.gguf").string() + " --gpu 1M --ram 1G --paper --usage " + profile);
    EXPECT_EQ(plan.status, 0) << plan.err;
}

}  // namespace
}  // namespace strata
