// Activation quantizers against the arithmetic of llama.cpp's x86 CPU backend, restated here:
//  Q8_0 / Q8_1: d = amax / 127 (f16), multiplier 127 / amax, round half to even, saturate;
//               Q8_1 adds s = f16(d · Σq) with the float d.
//  Q8_K:        scale -127 / max (max = the signed value of largest magnitude), round half to
//               even, clamp to 127; d = 1 / scale as float; bsums = sums of 16 quants.
// The weight quantizer of Q8_0 differs (multiplier 1 / d, halves away from zero); the tests
// show both differences matter.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "simd/quant.h"

namespace strata {
namespace {

using namespace quant;

int round_even(float v) {
    return static_cast<int>(std::nearbyint(v));
}  // default mode: to even

std::vector<float> random_row(std::mt19937& rng, int64_t n) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng) * std::exp(normal(rng));  // varied block scales
    // Some ties: values that land exactly on k + 0.5 after scaling by 127 / amax = 1.
    for (int64_t b = 0; b + 32 <= n; b += 96) {
        x[b] = 127.0f;
        for (int j = 1; j < 8; ++j) x[b + j] = static_cast<float>(j) + 0.5f;
    }
    return x;
}

TEST(QuantActivation, Q8_0AndQ8_1FollowTheX86Backend) {
    std::mt19937 rng(21);
    for (int64_t n : {32, 96, 4096}) {
        const std::vector<float> x = random_row(rng, n);
        std::vector<block_q8_0> q0(static_cast<size_t>(n / 32));
        std::vector<block_q8_1> q1(static_cast<size_t>(n / 32));
        traits(Type::Q8_0).quantize_activation(x.data(), q0.data(), n);
        traits(Type::Q8_1).quantize_activation(x.data(), q1.data(), n);
        for (int64_t b = 0; b < n / 32; ++b) {
            float amax = 0.0f;
            for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
            const float d = amax / 127.0f;
            const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            ASSERT_EQ(q0[b].d, fp32_to_fp16(d));
            ASSERT_EQ(q1[b].d, fp32_to_fp16(d));
            int sum = 0;
            for (int j = 0; j < 32; ++j) {
                const int want = std::clamp(round_even(x[b * 32 + j] * id), -128, 127);
                ASSERT_EQ(q0[b].qs[j], want) << "block " << b << " element " << j;
                ASSERT_EQ(q1[b].qs[j], want);
                sum += want;
            }
            ASSERT_EQ(q1[b].s, fp32_to_fp16(d * static_cast<float>(sum))) << "block " << b;
        }
    }
}

TEST(QuantActivation, Q8_KFollowsTheReference) {
    std::mt19937 rng(22);
    for (int64_t n : {256, 1024}) {
        const std::vector<float> x = random_row(rng, n);
        std::vector<block_q8_K> q(static_cast<size_t>(n / 256));
        traits(Type::Q8_K).quantize_activation(x.data(), q.data(), n);
        for (int64_t b = 0; b < n / 256; ++b) {
            const float* xb = x.data() + b * 256;
            float max = 0.0f;
            for (int j = 0; j < 256; ++j)
                if (std::fabs(xb[j]) > std::fabs(max)) max = xb[j];
            const float iscale = -127.0f / max;
            ASSERT_EQ(q[b].d, 1.0f / iscale);
            for (int j = 0; j < 256; ++j)
                ASSERT_EQ(q[b].qs[j], std::min(127, round_even(iscale * xb[j]))) << j;
            for (int g = 0; g < 16; ++g) {
                int sum = 0;
                for (int j = 0; j < 16; ++j) sum += q[b].qs[16 * g + j];
                ASSERT_EQ(q[b].bsums[g], sum) << "group " << g;
            }
        }
    }
}

// 127 / amax and 1 / (amax / 127) are not always the same float. Find a block where the two
// multipliers put an element on different sides of a rounding boundary, and check that the
// activation quantizer uses the first (x86 backend) and the weight quantizer the second (ref).
TEST(QuantActivation, MultiplierDiffersFromTheWeightQuantizer) {
    std::mt19937 rng(23);
    std::uniform_real_distribution<float> scale(0.5f, 2.0f);
    for (int attempt = 0; attempt < 100000; ++attempt) {
        const float amax = scale(rng);
        const float id_x86 = 127.0f / amax;
        const float id_ref = 1.0f / (amax / 127.0f);
        if (id_x86 == id_ref) continue;
        // Elements next to the midpoints between levels, where one ulp of multiplier counts.
        for (int k = 0; k < 126; ++k) {
            float x = (static_cast<float>(k) + 0.5f) / id_x86;
            for (int step = 0; step < 4; ++step, x = std::nextafter(x, 1e9f)) {
                // Not an exact tie under either multiplier, so the rounding rule plays no part.
                auto is_tie = [](float v) { return v - std::floor(v) == 0.5f; };
                if (is_tie(x * id_x86) || is_tie(x * id_ref)) continue;
                const int by_x86 = round_even(x * id_x86);
                const int by_ref = round_even(x * id_ref);
                if (by_x86 == by_ref) continue;
                float row[32] = {amax, x};
                block_q8_0 act{}, weight{};
                traits(Type::Q8_0).quantize_activation(row, &act, 32);
                quantize_row(Type::Q8_0, row, &weight, 32);
                EXPECT_EQ(act.qs[1], by_x86) << "amax " << amax << " x " << x;
                EXPECT_EQ(weight.qs[1], by_ref) << "amax " << amax << " x " << x;
                return;
            }
        }
    }
    FAIL() << "no distinguishing case found";
}

TEST(QuantActivation, ZeroRowsHaveZeroScalesAndSums) {
    const std::vector<float> zeros(256, 0.0f);
    block_q8_0 q0[8];
    block_q8_1 q1[8];
    block_q8_K qk;
    std::memset(&qk, 0x5a, sizeof qk);  // garbage that must be overwritten
    traits(Type::Q8_0).quantize_activation(zeros.data(), q0, 256);
    traits(Type::Q8_1).quantize_activation(zeros.data(), q1, 256);
    traits(Type::Q8_K).quantize_activation(zeros.data(), &qk, 256);
    for (int b = 0; b < 8; ++b) {
        EXPECT_EQ(fp16_to_fp32(q0[b].d), 0.0f);
        EXPECT_EQ(fp16_to_fp32(q1[b].s), 0.0f);
        for (int j = 0; j < 32; ++j) EXPECT_EQ(q0[b].qs[j], 0);
    }
    EXPECT_EQ(qk.d, 0.0f);
    for (int g = 0; g < 16; ++g) EXPECT_EQ(qk.bsums[g], 0);
    for (int j = 0; j < 256; ++j) EXPECT_EQ(qk.qs[j], 0);
}

}  // namespace
}  // namespace strata
