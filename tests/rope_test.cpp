// RoPE variants against their definitions computed in double: adjacent and NEOX pairs, partial
// rotation, llama3 frequency factors, YaRN (correction dims, ramp, magnitude), and the RoPE
// settings each architecture derives from its hyperparameters.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "runtime/arch/archs.h"
#include "runtime/arch/common.h"
#include "runtime/ops.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

// The definition: pair i at angle θ_i = pos · base^(-2i/n_rot) / ff_i, YaRN-mixed, times mscale.
std::vector<double> rotate_reference(const ops::RopeParams& p, int64_t pos,
                                     const std::vector<double>& x) {
    double low = 0.0, high = 0.0;
    if (p.ext_factor != 0.0f) {
        const auto dim = [&](double beta) {
            return static_cast<double>(p.n_rot) *
                   std::log(static_cast<double>(p.n_ctx_orig) / (beta * 2.0 * std::numbers::pi)) /
                   (2.0 * std::log(double{p.freq_base}));
        };
        low = std::max(0.0, std::floor(dim(p.beta_fast)));
        high = std::min(static_cast<double>(p.n_rot - 1), std::ceil(dim(p.beta_slow)));
    }
    double mscale = p.attn_factor;
    if (p.ext_factor != 0.0f) mscale *= 1.0 + 0.1 * std::log(1.0 / double{p.freq_scale});
    std::vector<double> y = x;
    const int64_t half = p.n_rot / 2;
    for (int64_t i = 0; i < half; ++i) {
        double theta = static_cast<double>(pos) *
                       std::pow(double{p.freq_base},
                                -2.0 * static_cast<double>(i) / static_cast<double>(p.n_rot));
        if (!p.freq_factors.empty()) theta /= p.freq_factors[static_cast<size_t>(i)];
        const double interp = theta * p.freq_scale;
        double angle = interp;
        if (p.ext_factor != 0.0f) {
            const double r =
                1.0 -
                std::clamp((static_cast<double>(i) - low) / std::max(0.001, high - low), 0.0, 1.0);
            const double mix = r * p.ext_factor;
            angle = interp * (1.0 - mix) + theta * mix;
        }
        const size_t a = p.layout == ops::RopeLayout::Adjacent ? 2 * i : i;
        const size_t b = p.layout == ops::RopeLayout::Adjacent ? 2 * i + 1 : i + half;
        const double c = std::cos(angle) * mscale, s = std::sin(angle) * mscale;
        y[a] = x[a] * c - x[b] * s;
        y[b] = x[a] * s + x[b] * c;
    }
    return y;
}

void expect_rope(const ops::RopeParams& p, int64_t head, std::vector<int64_t> positions) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    std::vector<float> table(static_cast<size_t>(p.n_rot));
    for (int64_t pos : positions) {
        std::vector<float> x(static_cast<size_t>(head));
        for (float& v : x) v = nd(rng);
        const std::vector<double> want =
            rotate_reference(p, pos, std::vector<double>(x.begin(), x.end()));
        ops::rope_table(p, pos, table.data());
        ops::rope_apply(p, table.data(), x.data());
        for (int64_t i = 0; i < head; ++i) {
            // θ is built by float multiplication as the reference runtime does: its relative
            // error grows with the pair index (~i ulps), so the angle at position pos is off by
            // ~pos · i · 6e-8 radians.
            const double tol = 2e-6 + 1e-7 * static_cast<double>(pos) * static_cast<double>(head);
            EXPECT_NEAR(x[i], want[i], tol) << "pos " << pos << " dim " << i;
        }
    }
}

TEST(Rope, AdjacentPairs) {
    ops::RopeParams p;
    p.n_rot = 64;
    expect_rope(p, 64, {0, 1, 5, 37, 200});
}

TEST(Rope, NeoxHalves) {
    ops::RopeParams p;
    p.n_rot = 32;
    p.layout = ops::RopeLayout::Neox;
    p.freq_base = 1e6f;
    expect_rope(p, 32, {0, 3, 100});
}

TEST(Rope, PartialRotationLeavesTheRestAlone) {
    ops::RopeParams p;
    p.n_rot = 8;
    std::vector<float> x(20), table(8);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) + 0.5f;
    const std::vector<float> before = x;
    ops::rope_table(p, 11, table.data());
    ops::rope_apply(p, table.data(), x.data());
    for (size_t i = 8; i < x.size(); ++i) EXPECT_EQ(x[i], before[i]);
    EXPECT_NE(x[0], before[0]);
    expect_rope(p, 8, {11});
}

TEST(Rope, Llama3FrequencyFactorsDivideTheAngle) {
    ops::RopeParams p;
    p.n_rot = 16;
    p.freq_base = 500000.0f;
    for (int i = 0; i < 8; ++i) p.freq_factors.push_back(1.0f + static_cast<float>(i));
    expect_rope(p, 16, {1, 9, 123});
    // Pair 0 has factor 1 and the unscaled angle pos · 1.
    std::vector<float> table(16);
    ops::rope_table(p, 9, table.data());
    EXPECT_NEAR(table[0], std::cos(9.0), 1e-6);
    EXPECT_NEAR(table[2], std::cos(9.0 * std::pow(500000.0, -2.0 / 16.0) / 2.0), 1e-6);
}

TEST(Rope, YarnCorrectionDimsRoundOutwardAndClamp) {
    ops::RopeParams p;
    p.n_rot = 64;
    p.freq_base = 10000.0f;
    p.n_ctx_orig = 4096;
    float dims[2];
    ops::yarn_corr_dims(p, dims);
    const auto dim = [](double beta) {
        return 64.0 * std::log(4096.0 / (beta * 2.0 * std::numbers::pi)) /
               (2.0 * std::log(10000.0));
    };
    EXPECT_EQ(dims[0], std::floor(dim(32.0)));
    EXPECT_EQ(dims[1], std::ceil(dim(1.0)));
    p.n_rot = 8;  // a long original context with a small base: beta_slow's dim lies past 7
    p.freq_base = 100.0f;
    p.n_ctx_orig = 10000000;
    ops::yarn_corr_dims(p, dims);
    EXPECT_EQ(dims[1], 7.0f);
    p.n_ctx_orig = 16;  // a short one: beta_fast's dim is negative, clamped to 0
    ops::yarn_corr_dims(p, dims);
    EXPECT_EQ(dims[0], 0.0f);
}

TEST(Rope, YarnMixesInterpolationAndExtrapolation) {
    ops::RopeParams p;
    p.n_rot = 32;
    p.freq_scale = 1.0f / 40.0f;
    p.ext_factor = 1.0f;
    p.attn_factor = 0.7f;
    p.n_ctx_orig = 4096;
    expect_rope(p, 32, {0, 2, 50, 400});
}

// What each architecture hands the kernel, from the hyperparameters of a file.
TEST(Rope, ArchitectureSettings) {
    test::TempDir dir;
    test::TinySpec s;
    s.arch = Arch::DeepSeek2;
    s.yarn_factor = 40.0f;
    s.yarn_log_mul = 0.1f;  // mscale_all_dim 1
    s.qk_nope = 16;
    s.qk_rope = 8;
    const Model ds = test::load_tiny_model(s, dir / "ds.gguf");
    const ops::RopeParams p = arch::rope_params(ds, ops::RopeLayout::Adjacent);
    EXPECT_EQ(p.n_rot, 8);
    EXPECT_FLOAT_EQ(p.freq_scale, 1.0f / 40.0f);
    EXPECT_EQ(p.ext_factor, 1.0f);
    // The rotation keeps unit magnitude: the kernel's 1 + 0.1 ln 40 is cancelled.
    EXPECT_NEAR(p.attn_factor * (1.0 + 0.1 * std::log(40.0)), 1.0, 1e-6);
    // ... and the magnitude correction goes into the attention scale instead.
    const double m = 1.0 + 0.1 * 1.0 * std::log(40.0);
    EXPECT_NEAR(arch::mla_attention_scale(ds.hparams()), m * m / std::sqrt(24.0), 1e-6);

    s.yarn_log_mul = 0.0707f;  // V2-Lite: mscale_all_dim 0.707
    const Model lite = test::load_tiny_model(s, dir / "lite.gguf");
    const double m2 = 1.0 + 0.1 * 0.707 * std::log(40.0);
    EXPECT_NEAR(arch::mla_attention_scale(lite.hparams()), m2 * m2 / std::sqrt(24.0), 1e-5);
    EXPECT_NEAR(arch::rope_params(lite, ops::RopeLayout::Adjacent).attn_factor *
                    (1.0 + 0.1 * std::log(40.0)),
                1.0, 1e-6);

    test::TinySpec l;  // llama with YaRN: cos/sin scaled by 1 + 0.1 ln(factor)
    l.yarn_factor = 8.0f;
    const Model llama = test::load_tiny_model(l, dir / "l.gguf");
    const ops::RopeParams pl = arch::rope_params(llama, ops::RopeLayout::Adjacent);
    EXPECT_NEAR(pl.attn_factor, 1.0, 1e-6);
    s.yarn_factor = 0.0f;  // no scaling: plain 1/sqrt(key length)
    const Model plain = test::load_tiny_model(s, dir / "plain.gguf");
    EXPECT_NEAR(arch::mla_attention_scale(plain.hparams()), 1.0 / std::sqrt(24.0), 1e-7);
    EXPECT_EQ(arch::rope_params(plain, ops::RopeLayout::Adjacent).ext_factor, 0.0f);
}

}  // namespace
}  // namespace strata
