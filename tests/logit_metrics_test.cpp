// The golden set's agreement metrics (runtime/logit_metrics.h) on hand-worked rows, and
// `strata eval --ref / --greedy` from the outside.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "runtime/logit_metrics.h"
#include "runtime/session.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

using nlohmann::json;

TEST(LogitMetrics, RowMetricsByHand) {
    const float ref[] = {1.0f, -2.0f, 0.5f};
    const float out[] = {1.0f, -2.0f, 0.7f};
    // |0.7 - 0.5| over the largest |ref| = 2.
    EXPECT_NEAR(metrics::row_max_rel(out, ref, 3), 0.1, 1e-7);
    EXPECT_EQ(metrics::row_argmax(out, 3), 0);
    // P = softmax(0, 0) = (1/2, 1/2), Q = softmax(0, ln 3) = (1/4, 3/4):
    // KL = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3).
    const double p[] = {0.0, 0.0};
    const double q[] = {0.0, std::log(3.0)};
    EXPECT_NEAR(metrics::row_kl(q, p, 2), 0.5 * std::log(4.0 / 3.0), 1e-12);
    EXPECT_NEAR(metrics::row_kl(p, p, 2), 0.0, 1e-15);
}

TEST(LogitMetrics, CompareLogitsOverRows) {
    const int64_t V = 4;
    const std::vector<float> ref = {0, 1, 2, 3, /**/ 5, 4, 3, 2, /**/ 1, 1, 0, 0};
    std::vector<float> out = ref;
    metrics::LogitAgreement a = metrics::compare_logits(out, ref, V);
    EXPECT_EQ(a.n_rows, 3);
    EXPECT_EQ(a.max_rel, 0.0);
    EXPECT_EQ(a.mean_kl, 0.0);
    EXPECT_EQ(a.top1, 1.0);
    EXPECT_EQ(a.exact_rows, 3);
    EXPECT_TRUE(metrics::within_f32_bounds(a));
    EXPECT_TRUE(metrics::within_quant_bounds(a));

    out[4 + 1] = 6.0f;  // row 1: argmax moves from 0 to 1, error 2 over max |ref| 5
    a = metrics::compare_logits(out, ref, V);
    EXPECT_EQ(a.worst_row, 1);
    EXPECT_NEAR(a.max_rel, 0.4, 1e-7);
    EXPECT_NEAR(a.top1, 2.0 / 3.0, 1e-12);
    EXPECT_EQ(a.exact_rows, 2);
    EXPECT_GT(a.mean_kl, 0.0);
    EXPECT_FALSE(metrics::within_f32_bounds(a));
    EXPECT_FALSE(metrics::within_quant_bounds(a));
}

TEST(LogitMetrics, EvalComparesWithAReferenceFileAndContinuesGreedily) {
    test::TempDir dir;
    test::TinySpec spec;
    spec.type = quant::Type::Q8_0;
    const auto model_path = dir / "m.gguf";
    const Model model = test::load_tiny_model(spec, model_path);
    const std::vector<int32_t> ids = {3, 14, 15, 92, 65, 35};
    const auto ours = dir / "ours.f32";
    test::CommandResult r =
        test::run_strata("eval -m " + model_path.string() + " --tokens " + test::token_list(ids) +
                         " --out " + ours.string() + " --greedy 5 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const json first = json::parse(r.out);

    // The greedy ids are those of a session continuing the prompt one token at a time.
    Session s(model, {.n_ctx = 16, .n_batch = 16});
    std::vector<float> logits;
    s.decode_all(ids, logits);
    const int64_t V = s.n_vocab();
    std::vector<int32_t> greedy;
    std::vector<float> last(logits.end() - V, logits.end());
    for (int i = 0; i < 5; ++i) {
        greedy.push_back(static_cast<int32_t>(metrics::row_argmax(last.data(), V)));
        const auto next = s.decode({&greedy.back(), 1});
        last.assign(next.begin(), next.end());
    }
    EXPECT_EQ(first["greedy"].get<std::vector<int32_t>>(), greedy);

    // Against its own logits: identical. Against a perturbed copy: the metrics see it.
    r = test::run_strata("eval -m " + model_path.string() + " --tokens " + test::token_list(ids) +
                         " --ref " + ours.string() + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["max_rel"].get<double>(), 0.0);
    EXPECT_EQ(j["exact_positions"].get<int64_t>(), 6);
    EXPECT_EQ(j["top1"].get<double>(), 1.0);

    std::string bytes = test::read_file(ours);
    auto* f = reinterpret_cast<float*>(bytes.data());
    f[2 * V + 7] += 1.0f;
    const auto perturbed = dir / "perturbed.f32";
    std::ofstream(perturbed, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    r = test::run_strata("eval -m " + model_path.string() + " --tokens " + test::token_list(ids) +
                         " --ref " + perturbed.string() + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    j = json::parse(r.out);
    EXPECT_GT(j["max_rel"].get<double>(), 0.0);
    EXPECT_EQ(j["worst_position"].get<int64_t>(), 2);
    EXPECT_EQ(j["exact_positions"].get<int64_t>(), 5);

    // A file of another size is refused, naming it.
    r = test::run_strata("eval -m " + model_path.string() + " --tokens 1,2,3 --ref " +
                         ours.string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(ours.string()), std::string::npos) << r.err;
}

}  // namespace
}  // namespace strata
