// Every case of golden/manifest.json against llama.cpp's logits, with the metrics and bounds of
// golden/README.md: the prompt evaluated in one batch with logits at every position, then 16
// greedy tokens one decode call at a time.
//   f32:   max_rel ≤ 1e-3 at every position (we hold it to 1e-5: the README's independent
//          implementation reached 5.4e-6, this one ~2e-6) and the greedy continuation identical;
//   quant: mean_kl ≤ 5e-3 and top1 ≥ 0.98 (greedy reported, not required);
//   equivalences: the two models' logits agree to max_rel ≤ 1e-5.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/session.h"
#include "tests/reference_forward.h"
#include "tests/test_util.h"

namespace strata {
namespace {

using nlohmann::json;

const json& manifest() {
    static const json m = [] {
        const auto dir = test::golden_dir();
        if (dir.empty()) return json::object();
        std::ifstream in(dir / "manifest.json");
        return json::parse(in);
    }();
    return m;
}

std::vector<std::string> case_names() {
    std::vector<std::string> names;
    if (manifest().contains("cases"))
        for (const json& c : manifest()["cases"]) names.push_back(c["name"]);
    if (names.empty()) names.push_back("golden_set_missing");
    return names;
}

const json* find_case(const std::string& name) {
    if (!manifest().contains("cases")) return nullptr;
    for (const json& c : manifest()["cases"])
        if (c["name"] == name) return &c;
    return nullptr;
}

std::vector<float> read_logits(const std::filesystem::path& path) {
    const std::string bytes = test::read_file(path);
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
    return v;
}

// The prompt's logits in one batch (eval), or nullopt when the model's types are not computable.
struct Eval {
    std::vector<float> logits;  // (n_prompt, n_vocab)
    std::vector<int32_t> greedy;
};

Eval evaluate(const std::filesystem::path& model_path, const std::vector<int32_t>& prompt,
              int n_greedy) {
    const Model model = Model::load(gguf::File::open(model_path.string()));
    const auto n = static_cast<int64_t>(prompt.size());
    Session s(model, {.n_ctx = n + n_greedy, .n_batch = n});
    Eval e;
    s.decode_all(prompt, e.logits);
    const int64_t vocab = s.n_vocab();
    std::span<const float> last(e.logits.data() + (n - 1) * vocab, static_cast<size_t>(vocab));
    for (int i = 0; i < n_greedy; ++i) {
        const auto id = static_cast<int32_t>(test::row_argmax(last.data(), vocab));
        e.greedy.push_back(id);
        if (i + 1 < n_greedy) last = s.decode({&id, 1});
    }
    return e;
}

class GoldenCase : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenCase, MatchesLlamaCpp) {
    STRATA_REQUIRE_GOLDEN();
    const json* c = find_case(GetParam());
    ASSERT_NE(c, nullptr);
    const auto dir = test::golden_dir();
    const std::vector<int32_t> prompt = (*c)["prompt_ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> want_greedy = (*c)["greedy_ids"].get<std::vector<int32_t>>();
    // Every golden case must run: an error (an unsupported type or architecture included) fails
    // the case rather than skipping it.
    const Eval e = evaluate(dir / (*c)["model"].get<std::string>(), prompt,
                            static_cast<int>(want_greedy.size()));
    const std::vector<float> ref = read_logits(dir / (*c)["logits"].get<std::string>());
    const int64_t V = (*c)["n_vocab"], n = (*c)["n_prompt"];
    ASSERT_EQ(e.logits.size(), ref.size());
    double max_rel = 0.0, mean_kl = 0.0;
    int64_t same = 0;
    for (int64_t p = 0; p < n; ++p) {
        const float* o = e.logits.data() + p * V;
        const float* r = ref.data() + p * V;
        max_rel = std::max(max_rel, test::row_max_rel(o, r, V));
        mean_kl += test::row_kl(o, r, V) / static_cast<double>(n);
        same += test::row_argmax(o, V) == test::row_argmax(r, V);
    }
    const double top1 = static_cast<double>(same) / static_cast<double>(n);
    const bool greedy_same = e.greedy == want_greedy;
    // Visible with --gtest_output=json:FILE, one entry per case.
    RecordProperty("max_rel", fmt::format("{:.3g}", max_rel));
    RecordProperty("mean_kl", fmt::format("{:.3g}", mean_kl));
    RecordProperty("top1", fmt::format("{:.3f}", top1));
    RecordProperty("greedy", greedy_same ? "identical" : "differs");
    const std::string metrics =
        fmt::format("max_rel {:.3g}, mean_kl {:.3g}, top1 {:.3f}, greedy {}", max_rel, mean_kl,
                    top1, greedy_same ? "identical" : "differs");
    if ((*c)["kind"] == "f32") {
        EXPECT_LE(max_rel, 1e-5) << metrics;
        EXPECT_TRUE(greedy_same) << metrics;
    } else {
        EXPECT_LE(mean_kl, 5e-3) << metrics;
        EXPECT_GE(top1, 0.98) << metrics;
    }
}

INSTANTIATE_TEST_SUITE_P(Manifest, GoldenCase, ::testing::ValuesIn(case_names()),
                         [](const auto& p) {
                             std::string s = p.param;
                             for (char& ch : s)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return s;
                         });

TEST(GoldenEquivalence, SameWeightsSameLogits) {
    STRATA_REQUIRE_GOLDEN();
    const auto dir = test::golden_dir();
    for (const json& eq : manifest()["equivalences"]) {
        const std::string a = eq["model"], b = eq["same_logits_as"];
        SCOPED_TRACE(a + " vs " + b);
        for (const json& c : manifest()["cases"]) {
            if (c["model"] != b) continue;
            const std::vector<int32_t> prompt = c["prompt_ids"].get<std::vector<int32_t>>();
            const Eval ea = evaluate(dir / a, prompt, 1), eb = evaluate(dir / b, prompt, 1);
            const int64_t V = c["n_vocab"], n = c["n_prompt"];
            for (int64_t p = 0; p < n; ++p) {
                EXPECT_LE(test::row_max_rel(ea.logits.data() + p * V, eb.logits.data() + p * V, V),
                          1e-5)
                    << c["name"] << " position " << p;
            }
        }
    }
}

}  // namespace
}  // namespace strata
