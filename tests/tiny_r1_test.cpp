// The shipped default model, strata-tiny-r1 (models/strata-tiny-r1.gguf, trained and exported by
// scripts/train_tiny_reasoner.py): Strata's logits on it against the training framework's own
// forward pass, and its answers to held-out problems through the path a user takes (the CLI
// without -m, the chat template, greedy decoding, the reasoning split).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "runtime/gguf.h"
#include "runtime/logit_metrics.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "simd/quant.h"
#include "tests/test_util.h"

namespace strata {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kModels = fs::path(STRATA_SOURCE_DIR) / "models";
const fs::path kData = fs::path(STRATA_SOURCE_DIR) / "tests" / "data";

json read_json(const fs::path& p) {
    std::ifstream in(p);
    EXPECT_TRUE(in) << p;
    return json::parse(in);
}

// A copy of the Q8_0 file with every tensor dequantized to F32: the weights the fixture's
// logits were computed from, without Strata's activation quantization.
void write_dequantized(const gguf::File& q, const std::string& path,
                       std::vector<std::vector<float>>& keep) {
    gguf::Writer w(q.alignment());
    for (const gguf::KeyValue& kv : q.metadata()) w.set_value(std::string(kv.key), kv.value);
    w.set_u32("general.file_type", 0);
    for (const gguf::Tensor& t : q.tensors()) {
        std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
        const int64_t row = ne[0], rows = t.n_elements() / row;
        std::vector<float>& f = keep.emplace_back(static_cast<size_t>(t.n_elements()));
        for (int64_t r = 0; r < rows; ++r)
            quant::dequantize_row(t.type, t.data + static_cast<size_t>(r) * t.row_bytes(),
                                  f.data() + r * row, row);
        w.add_tensor(std::string(t.name), quant::Type::F32, ne,
                     std::span(reinterpret_cast<const uint8_t*>(f.data()), f.size() * 4));
    }
    w.write(path);
}

TEST(TinyR1, LogitsEqualTheTrainingFrameworks) {
    const json fixture = read_json(kModels / "strata-tiny-r1.logits.json");
    const gguf::File q = gguf::File::open((kModels / "strata-tiny-r1.gguf").string());
    test::TempDir dir;
    std::vector<std::vector<float>> keep;
    write_dequantized(q, (dir / "f32.gguf").string(), keep);
    const Model m = Model::load(gguf::File::open((dir / "f32.gguf").string()));
    const int64_t vocab = m.hparams().n_vocab;
    ASSERT_GE(fixture["cases"].size(), 2u);
    for (const json& c : fixture["cases"]) {
        const auto ids = c["ids"].get<std::vector<int32_t>>();
        const auto rows = c["logits"].get<std::vector<std::vector<float>>>();
        ASSERT_EQ(rows.size(), ids.size());
        std::vector<float> ref;
        for (const auto& r : rows) {
            ASSERT_EQ(static_cast<int64_t>(r.size()), vocab);
            ref.insert(ref.end(), r.begin(), r.end());
        }
        Session s(m, {.n_ctx = static_cast<int64_t>(ids.size())});
        std::vector<float> out;
        s.decode_all(ids, out);
        const metrics::LogitAgreement cmp = metrics::compare_logits(out, ref, vocab);
        std::fprintf(stderr, "%zu positions: max_rel %.3g, top1 %.3f\n", ids.size(), cmp.max_rel,
                     cmp.top1);
        EXPECT_LE(cmp.max_rel, metrics::kF32MaxRel) << "row " << cmp.worst_row;
        EXPECT_EQ(cmp.top1, 1.0);
    }
}

// The answer the question asks for, computed here from the question's text.
std::string expected_answer(const std::string& q) {
    std::smatch m;
    if (std::regex_match(q, m, std::regex(R"(What is (\d+)([-+*])(\d+)\?)"))) {
        const long a = std::stol(m[1]), b = std::stol(m[3]);
        const char op = m[2].str()[0];
        return std::to_string(op == '+' ? a + b : op == '-' ? a - b : a * b);
    }
    if (std::regex_match(q, m, std::regex(R"(Which is larger, (\d+) or (\d+)\?)")))
        return std::to_string(std::max(std::stol(m[1]), std::stol(m[2])));
    ADD_FAILURE() << "not a question of the tasks: " << q;
    return "";
}

std::string last_line(const std::string& out) {
    std::istringstream in(out);
    std::string line, last;
    while (std::getline(in, line))
        if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
    const size_t b = last.find_first_not_of(" \t\r"), e = last.find_last_not_of(" \t\r");
    return b == std::string::npos ? "" : last.substr(b, e - b + 1);
}

// Runs every held-out question of `file` through `strata run --chat --hide-reasoning` (no -m: the
// shipped model) at temperature 0; returns the share answered exactly, the answer alone on the
// last line.
double held_out_accuracy(const std::string& file, size_t* n) {
    const json problems = read_json(kData / file);
    *n = problems.size();
    size_t right = 0;
    for (const json& p : problems) {
        const std::string q = p["question"];
        const std::string want = expected_answer(q);
        const test::CommandResult r =
            test::run_strata("run --chat --hide-reasoning --temp 0 -p '" + q + "'");
        EXPECT_EQ(r.status, 0) << q << "\n" << r.err;
        const std::string got = last_line(r.out);
        EXPECT_EQ(r.out.find("so far"), std::string::npos) << "reasoning shown for " << q;
        if (got == want)
            ++right;
        else
            std::fprintf(stderr, "  %s -> %s (want %s)\n", q.c_str(), got.c_str(), want.c_str());
    }
    return static_cast<double>(right) / static_cast<double>(*n);
}

TEST(TinyR1, AnswersHeldOutAdditions) {
    size_t n = 0;
    const double acc = held_out_accuracy("tiny_r1_held_out_add.json", &n);
    EXPECT_EQ(n, 200u);
    std::fprintf(stderr, "held-out additions: %.1f%% exact of %zu\n", 100 * acc, n);
    EXPECT_GE(acc, 0.95);
}

TEST(TinyR1, AnswersHeldOutProblemsOfEveryTask) {
    size_t n = 0;
    const double acc = held_out_accuracy("tiny_r1_held_out_mixed.json", &n);
    EXPECT_EQ(n, 200u);
    std::fprintf(stderr, "held-out problems, four tasks: %.1f%% exact of %zu\n", 100 * acc, n);
    EXPECT_GE(acc, 0.90);
}

// Without --hide-reasoning the working is shown before the answer, and the default model is
// announced on stderr.
TEST(TinyR1, ShowsItsReasoning) {
    const test::CommandResult r = test::run_strata("run --chat --temp 0 -p 'What is 347+589?'");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("so far"), std::string::npos) << r.out;
    EXPECT_EQ(last_line(r.out), "936") << r.out;
    EXPECT_NE(r.err.find("strata-tiny-r1.gguf"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace strata
