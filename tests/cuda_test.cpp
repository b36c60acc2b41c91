// The CUDA device against the CPU, on a machine with an NVIDIA GPU (skipped elsewhere, saying
// why): every weight type the kernels take, products on random blocks within float rounding of
// the CPU's; and split execution through the card on the golden models, logits within the
// golden bounds' rounding of the CPU-only ones, same argmax. scripts/cuda_test.sh runs these.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "cuda/device.h"
#include "runtime/plan_model.h"
#include "runtime/session.h"
#include "scheduler/cost.h"
#include "scheduler/device.h"
#include "simd/matmul.h"
#include "tests/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

#define STRATA_REQUIRE_GPU()                                                        \
    do {                                                                            \
        std::string why;                                                            \
        if (cuda::devices(&why).empty()) GTEST_SKIP() << "no CUDA device: " << why; \
    } while (0)

TEST(CudaDevice, ProductsEqualTheCpusWithinFloatRounding) {
    STRATA_REQUIRE_GPU();
    auto gpu = scheduler::make_cuda_device(64ull << 20);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const quant::Type types[] = {quant::Type::F32,  quant::Type::F16,  quant::Type::BF16,
                                 quant::Type::Q4_0, quant::Type::Q5_0, quant::Type::Q8_0,
                                 quant::Type::Q4_K, quant::Type::Q5_K, quant::Type::Q6_K};
    for (const quant::Type type : types) {
        SCOPED_TRACE(quant::type_name(type));
        ASSERT_TRUE(gpu->supports(type));
        const int64_t n_in = 1024, n_out = 77, n_rows = 5;
        const size_t row = quant::row_bytes(type, n_in);
        std::vector<uint8_t> w(row * n_out);
        std::vector<float> f(static_cast<size_t>(n_in));
        for (int64_t r = 0; r < n_out; ++r) {
            for (float& v : f) v = 0.05f * normal(rng);
            quant::quantize_row(type, f.data(), w.data() + r * row, n_in);
        }
        std::vector<float> x(static_cast<size_t>(n_in * n_rows));
        for (float& v : x) v = normal(rng);
        simd::Activations a;
        a.quantize(quant::traits(type).partner, x.data(), n_in, n_in, n_rows);
        std::vector<float> want(static_cast<size_t>(n_out * n_rows)), got(want.size());
        simd::matmul({w.data(), type, n_in, n_out, row}, a, want.data(), n_out);
        const int64_t buf = gpu->upload("w", w.data(), w.size());
        gpu->matmul({buf, 0, type, n_in, n_out, row}, a, got.data(), n_out, simd::Path::Gemm);
        float scale = 0.0f;
        for (const float v : want) scale = std::max(scale, std::fabs(v));
        for (size_t i = 0; i < want.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-5f * scale + 1e-6f) << "output " << i;
    }
    EXPECT_EQ(gpu->products(), std::size(types));
}

TEST(CudaDevice, SplitExecutionKeepsTheCpusLogitsOnGoldenModels) {
    STRATA_REQUIRE_GPU();
    STRATA_REQUIRE_GOLDEN();
    scheduler::Figures f = scheduler::published_figures();
    f.pcie_latency_us = 0;
    int models = 0;
    for (const auto& entry : fs::directory_iterator(test::golden_dir() / "models")) {
        if (entry.path().extension() != ".gguf") continue;
        SCOPED_TRACE(entry.path().filename().string());
        const Model m = Model::load(gguf::File::open(entry.path().string()));
        const std::vector<int32_t> ids = test::random_tokens(24, m.hparams().n_vocab, 3);
        std::vector<float> cpu;
        Session(m, {.n_ctx = 32}).decode_all(ids, cpu);
        uint64_t weights = 0;
        for (const auto& t : model_info(m).tensors) weights += t.bytes;
        for (const double share : {0.2, 0.6, 1.5}) {
            SessionOptions o;
            o.n_ctx = 32;
            o.gpu = {.budget = static_cast<uint64_t>(share * static_cast<double>(weights)) + 4096,
                     .device = "cuda",
                     .reserve = 0,
                     .figures = f};
            Session s(m, o);
            std::vector<float> split;
            s.decode_all(ids, split);
            ASSERT_EQ(split.size(), cpu.size());
            const int64_t vocab = m.hparams().n_vocab;
            for (size_t t = 0; t < ids.size(); ++t) {
                const float* c = cpu.data() + t * vocab;
                const float* g = split.data() + t * vocab;
                float scale = 0.0f, diff = 0.0f;
                for (int64_t v = 0; v < vocab; ++v) {
                    scale = std::max(scale, std::fabs(c[v]));
                    diff = std::max(diff, std::fabs(c[v] - g[v]));
                }
                EXPECT_LE(diff, 1e-3f * scale) << "position " << t << ", share " << share;
                EXPECT_EQ(std::max_element(c, c + vocab) - c, std::max_element(g, g + vocab) - g)
                    << "position " << t << ", share " << share;
            }
        }
        ++models;
    }
    EXPECT_GE(models, 3);
}

}  // namespace
}  // namespace strata
