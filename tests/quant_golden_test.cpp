// Golden acceptance of the formats (golden/README.md, "quantization"): for every
// llama.pure-<TYPE>.gguf written by llama-quantize --pure from llama.f32.gguf,
//  (a) our dequantization reproduces manifest.json's dequant_rmse_per_tensor to 1e-6 relative,
//      i.e. we decode llama.cpp's files exactly;
//  (b) our own quantizer, run on the F32 tensors, reaches an RMS error ≤ 1.02 × that figure.
// RMS errors are computed in double. The worst ratio of (b) per type is printed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/gguf.h"
#include "simd/quant.h"
#include "tests/test_util.h"

namespace strata {
namespace {

using quant::Type;

double rms_error(const std::vector<float>& got, const float* want, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double diff = static_cast<double>(got[i]) - static_cast<double>(want[i]);
        sum += diff * diff;
    }
    return std::sqrt(sum / static_cast<double>(n));
}

std::vector<float> dequantize(Type type, const uint8_t* data, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    quant::dequantize_row(type, data, out.data(), n);
    return out;
}

// Quantizes row by row, as llama-quantize does, and decodes the result.
std::vector<float> round_trip(Type type, const float* src, int64_t row_len, int64_t rows) {
    const size_t row_bytes = quant::row_bytes(type, row_len);
    std::vector<uint8_t> q(row_bytes * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
        quant::quantize_row(type, src + r * row_len, q.data() + static_cast<size_t>(r) * row_bytes,
                            row_len);
    return dequantize(type, q.data(), row_len * rows);
}

const nlohmann::json& manifest() {
    static const nlohmann::json m =
        nlohmann::json::parse(test::read_file(test::golden_dir() / "manifest.json"));
    return m;
}

const nlohmann::json* find_model(const std::string& file) {
    for (const auto& model : manifest()["models"])
        if (model["file"] == file) return &model;
    return nullptr;
}

class QuantGolden : public ::testing::TestWithParam<Type> {};

TEST_P(QuantGolden, DequantMatchesAndQuantizerIsAsAccurate) {
    STRATA_REQUIRE_GOLDEN();
    const Type type = GetParam();
    const std::string name(quant::type_name(type));
    const std::string file = "models/llama.pure-" + name + ".gguf";
    const nlohmann::json* model = find_model(file);
    ASSERT_NE(model, nullptr) << file << " missing from manifest.json";
    const auto& expected_rmse = (*model)["dequant_rmse_per_tensor"];

    const auto f32 = gguf::File::open((test::golden_dir() / "models/llama.f32.gguf").string());
    const auto pure = gguf::File::open((test::golden_dir() / file).string());
    ASSERT_EQ(pure.tensors().size(), expected_rmse.size());

    double worst_ratio = 0.0, worst_dequant_rel = 0.0;
    std::string worst_tensor;
    int quantized = 0, identical = 0;
    for (const gguf::Tensor& t : pure.tensors()) {
        SCOPED_TRACE(std::string(t.name));
        const gguf::Tensor& ref = f32.tensor(t.name);
        ASSERT_EQ(ref.type, Type::F32);
        ASSERT_EQ(ref.ne, t.ne);
        const auto* want = reinterpret_cast<const float*>(ref.data);
        const int64_t n = t.n_elements();
        const double expected = expected_rmse.at(std::string(t.name)).get<double>();

        // (a) Decoding the file written by llama-quantize.
        const double got = rms_error(dequantize(t.type, t.data, n), want, static_cast<size_t>(n));
        if (expected == 0.0) {
            EXPECT_EQ(got, 0.0);
            continue;  // kept in F32 (norms, rope_freqs)
        }
        ASSERT_EQ(t.type, type);
        const double rel = std::fabs(got - expected) / expected;
        EXPECT_LE(rel, 1e-6) << "dequant RMS " << got << " vs manifest " << expected;
        worst_dequant_rel = std::max(worst_dequant_rel, rel);

        // (b) Our quantizer on the same F32 data.
        const int64_t rows = n / t.ne[0];
        const std::vector<float> mine = round_trip(type, want, t.ne[0], rows);
        const double ratio = rms_error(mine, want, static_cast<size_t>(n)) / expected;
        EXPECT_LE(ratio, 1.02) << "quantizer RMS / llama-quantize RMS";
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst_tensor = std::string(t.name);
        }
        // Diagnostic only: how often our bytes equal llama-quantize's exactly.
        std::vector<uint8_t> q(t.nbytes);
        for (int64_t r = 0; r < rows; ++r)
            quant::quantize_row(type, want + r * t.ne[0], q.data() + r * t.row_bytes(), t.ne[0]);
        ++quantized;
        identical += std::memcmp(q.data(), t.data, t.nbytes) == 0;
    }
    std::printf(
        "[ golden   ] %-5s worst quantizer RMS ratio %.6f (%s), worst dequant rel diff %.2e, "
        "%d/%d tensors byte-identical to llama-quantize\n",
        name.c_str(), worst_ratio, worst_tensor.c_str(), worst_dequant_rel, identical, quantized);
}

INSTANTIATE_TEST_SUITE_P(AllPureTypes, QuantGolden,
                         ::testing::Values(Type::F16, Type::BF16, Type::Q4_0, Type::Q4_1,
                                           Type::Q5_0, Type::Q5_1, Type::Q8_0, Type::Q2_K,
                                           Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K),
                         [](const ::testing::TestParamInfo<Type>& param) {
                             return std::string(quant::type_name(param.param));
                         });

}  // namespace
}  // namespace strata
