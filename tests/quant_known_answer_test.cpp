// Known-answer vectors per format. Each test chooses integer levels, scales and mins, packs them
// into a block by the format's definition (written out here, independently of simd/ref), and
// checks that dequantization returns d·scale·level − dmin·min exactly: every factor is a small
// integer or a power of two, so the float result is exact. Quantizer tests feed inputs whose
// quantization can be worked out by hand.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "simd/quant.h"

namespace strata {
namespace {

using namespace quant;

constexpr uint16_t kHalf0_5 = 0x3800;    // 0.5 as f16
constexpr uint16_t kHalf0_25 = 0x3400;   // 0.25
constexpr uint16_t kHalf0_125 = 0x3000;  // 0.125
constexpr uint16_t kHalf1 = 0x3c00;      // 1.0
constexpr uint16_t kHalfM2 = 0xc000;     // -2.0

template <typename Block>
std::vector<float> decode(Type type, const Block& b) {
    std::vector<float> out(static_cast<size_t>(traits(type).block_size));
    dequantize_row(type, &b, out.data(), traits(type).block_size);
    return out;
}

void expect_exact(const std::vector<float>& got, const std::vector<double>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(static_cast<double>(got[i]), want[i]) << i;
}

std::vector<int> random_levels(std::mt19937& rng, int n, int lo, int hi) {
    std::uniform_int_distribution<int> dist(lo, hi);
    std::vector<int> v(static_cast<size_t>(n));
    for (int& x : v) x = dist(rng);
    return v;
}

// ---------------------------------------------------------------------------------------------
// Legacy formats: element j in the low nibble of qs[j], j + 16 in the high nibble of qs[j];
// fifth bit of element j is bit j of the little-endian word qh.

TEST(QuantKnownAnswer, Q4_0LiteralBlock) {
    block_q4_0 b{};
    b.d = kHalf0_5;
    b.qs[0] = 0x1F;                      // element 0: 15 - 8 = 7; element 16: 1 - 8 = -7
    b.qs[3] = 0x80;                      // element 3: 0 - 8 = -8; element 19: 8 - 8 = 0
    std::vector<double> want(32, -4.0);  // zero bytes: (0 - 8) · 0.5
    want[0] = 3.5;
    want[16] = -3.5;
    want[3] = -4.0;
    want[19] = 0.0;
    expect_exact(decode(Type::Q4_0, b), want);
}

TEST(QuantKnownAnswer, LegacyNibbleFormats) {
    std::mt19937 rng(1);
    for (Type type : {Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1}) {
        SCOPED_TRACE(type_name(type));
        const bool five = type == Type::Q5_0 || type == Type::Q5_1;
        const bool has_min = type == Type::Q4_1 || type == Type::Q5_1;
        const std::vector<int> L = random_levels(rng, 32, 0, five ? 31 : 15);
        uint8_t qs[16];
        uint32_t qh = 0;
        for (int j = 0; j < 16; ++j) {
            qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
            qh |= static_cast<uint32_t>(L[j] >> 4) << j;
            qh |= static_cast<uint32_t>(L[j + 16] >> 4) << (j + 16);
        }
        std::vector<float> got;
        if (type == Type::Q4_0) {
            block_q4_0 b{kHalf0_25, {}};
            std::memcpy(b.qs, qs, 16);
            got = decode(type, b);
        } else if (type == Type::Q4_1) {
            block_q4_1 b{kHalf0_25, kHalfM2, {}};
            std::memcpy(b.qs, qs, 16);
            got = decode(type, b);
        } else if (type == Type::Q5_0) {
            block_q5_0 b{kHalf0_25, {}, {}};
            std::memcpy(b.qh, &qh, 4);  // little-endian host
            std::memcpy(b.qs, qs, 16);
            got = decode(type, b);
        } else {
            block_q5_1 b{kHalf0_25, kHalfM2, {}, {}};
            std::memcpy(b.qh, &qh, 4);
            std::memcpy(b.qs, qs, 16);
            got = decode(type, b);
        }
        std::vector<double> want(32);
        const int offset = has_min ? 0 : (five ? 16 : 8);
        for (int j = 0; j < 32; ++j) want[j] = 0.25 * (L[j] - offset) + (has_min ? -2.0 : 0.0);
        expect_exact(got, want);
    }
}

TEST(QuantKnownAnswer, Q8Formats) {
    std::mt19937 rng(2);
    const std::vector<int> q = random_levels(rng, 256, -128, 127);
    block_q8_0 b0{kHalf0_125, {}};
    block_q8_1 b1{kHalf0_125, 0x7bff, {}};  // s is not used by dequantization
    block_q8_K bk{0.0625f, {}, {}};
    for (int j = 0; j < 256; ++j) {
        if (j < 32) b0.qs[j] = b1.qs[j] = static_cast<int8_t>(q[j]);
        bk.qs[j] = static_cast<int8_t>(q[j]);
    }
    std::vector<double> want32(32), want256(256);
    for (int j = 0; j < 256; ++j) {
        if (j < 32) want32[j] = 0.125 * q[j];
        want256[j] = 0.0625 * q[j];
    }
    expect_exact(decode(Type::Q8_0, b0), want32);
    expect_exact(decode(Type::Q8_1, b1), want32);
    expect_exact(decode(Type::Q8_K, bk), want256);
}

// ---------------------------------------------------------------------------------------------
// K-quants, packed as the format defines them (ggml-common.h).

// 2-bit planes: element e = 128h + 32p + l lives in bits 2p..2p+1 of qs[32h + l].
void pack_planes_2bit(const std::vector<int>& L, uint8_t* qs) {
    std::memset(qs, 0, 64);
    for (int e = 0; e < 256; ++e) {
        const int h = e / 128, p = (e % 128) / 32, l = e % 32;
        qs[32 * h + l] = static_cast<uint8_t>(qs[32 * h + l] | ((L[e] & 3) << (2 * p)));
    }
}

// Q4_K / Q5_K scales: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scale) and 4-7 (min);
// sub-blocks 4-7: low 4 bits in bytes 8-11 (scale low nibble, min high nibble), top 2 bits in
// bits 6-7 of bytes 0-3 (scale) and 4-7 (min).
void pack_scales_k4(const std::vector<int>& sc, const std::vector<int>& mn, uint8_t* out) {
    std::memset(out, 0, 12);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            out[j] = static_cast<uint8_t>(out[j] | sc[j]);
            out[j + 4] = static_cast<uint8_t>(out[j + 4] | mn[j]);
        } else {
            out[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
            out[j - 4] = static_cast<uint8_t>(out[j - 4] | ((sc[j] >> 4) << 6));
            out[j] = static_cast<uint8_t>(out[j] | ((mn[j] >> 4) << 6));
        }
    }
}

TEST(QuantKnownAnswer, Q2_K) {
    std::mt19937 rng(3);
    const std::vector<int> L = random_levels(rng, 256, 0, 3);
    const std::vector<int> sc = random_levels(rng, 16, 0, 15), mn = random_levels(rng, 16, 0, 15);
    block_q2_K b{};
    pack_planes_2bit(L, b.qs);
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(sc[j] | (mn[j] << 4));
    b.d = kHalf0_5;
    b.dmin = kHalf0_25;
    std::vector<double> want(256);
    for (int e = 0; e < 256; ++e) want[e] = 0.5 * sc[e / 16] * L[e] - 0.25 * mn[e / 16];
    expect_exact(decode(Type::Q2_K, b), want);
}

TEST(QuantKnownAnswer, Q3_K) {
    std::mt19937 rng(4);
    const std::vector<int> L = random_levels(rng, 256, -4, 3);
    const std::vector<int> s = random_levels(rng, 16, -32, 31);
    block_q3_K b{};
    // Stored level L + 4 in 0..7: bits 0-1 in the planes, bit 2 in hmask (element e → bit e/32
    // of hmask[e % 32]).
    std::vector<int> low(256);
    for (int e = 0; e < 256; ++e) {
        const int u = L[e] + 4;
        low[e] = u & 3;
        if (u & 4) b.hmask[e % 32] = static_cast<uint8_t>(b.hmask[e % 32] | (1 << (e / 32)));
    }
    pack_planes_2bit(low, b.qs);
    // Scale s + 32 in 6 bits: low nibble in byte j (j < 8, low half) or j - 8 (high half), top
    // two bits in byte 8 + j % 4 at bit 2·(j / 4).
    for (int j = 0; j < 16; ++j) {
        const int u = s[j] + 32;
        if (j < 8)
            b.scales[j] = static_cast<uint8_t>(b.scales[j] | (u & 0xF));
        else
            b.scales[j - 8] = static_cast<uint8_t>(b.scales[j - 8] | ((u & 0xF) << 4));
        b.scales[8 + j % 4] =
            static_cast<uint8_t>(b.scales[8 + j % 4] | ((u >> 4) << (2 * (j / 4))));
    }
    b.d = kHalf0_25;
    std::vector<double> want(256);
    for (int e = 0; e < 256; ++e) want[e] = 0.25 * s[e / 16] * L[e];
    expect_exact(decode(Type::Q3_K, b), want);
}

TEST(QuantKnownAnswer, Q4_KAndQ5_K) {
    std::mt19937 rng(5);
    for (Type type : {Type::Q4_K, Type::Q5_K}) {
        SCOPED_TRACE(type_name(type));
        const std::vector<int> L = random_levels(rng, 256, 0, type == Type::Q4_K ? 15 : 31);
        const std::vector<int> sc = random_levels(rng, 8, 0, 63), mn = random_levels(rng, 8, 0, 63);
        // Element e = 64c + 32s + l: nibble s of qs[32c + l]; Q5_K's fifth bit is bit 2c + s of
        // qh[l].
        uint8_t qs[128] = {}, qh[32] = {}, scales[12];
        for (int e = 0; e < 256; ++e) {
            const int c = e / 64, s = (e % 64) / 32, l = e % 32;
            qs[32 * c + l] = static_cast<uint8_t>(qs[32 * c + l] | ((L[e] & 0xF) << (4 * s)));
            qh[l] = static_cast<uint8_t>(qh[l] | ((L[e] >> 4) << (2 * c + s)));
        }
        pack_scales_k4(sc, mn, scales);
        std::vector<float> got;
        if (type == Type::Q4_K) {
            block_q4_K b{kHalf0_5, kHalf0_125, {}, {}};
            std::memcpy(b.scales, scales, 12);
            std::memcpy(b.qs, qs, 128);
            got = decode(type, b);
        } else {
            block_q5_K b{kHalf0_5, kHalf0_125, {}, {}, {}};
            std::memcpy(b.scales, scales, 12);
            std::memcpy(b.qh, qh, 32);
            std::memcpy(b.qs, qs, 128);
            got = decode(type, b);
        }
        std::vector<double> want(256);
        for (int e = 0; e < 256; ++e) want[e] = 0.5 * sc[e / 32] * L[e] - 0.125 * mn[e / 32];
        expect_exact(got, want);
    }
}

TEST(QuantKnownAnswer, Q6_K) {
    std::mt19937 rng(6);
    const std::vector<int> L = random_levels(rng, 256, -32, 31);
    const std::vector<int> sc = random_levels(rng, 16, -128, 127);
    block_q6_K b{};
    // Stored u = L + 32 in 0..63. Element e = 128h + 32p + l: low nibble in ql[64h + l] (p = 0
    // low, p = 2 high nibble) or ql[64h + 32 + l] (p = 1 low, p = 3 high); top 2 bits in bits
    // 2p..2p+1 of qh[32h + l].
    for (int e = 0; e < 256; ++e) {
        const int u = L[e] + 32, h = e / 128, p = (e % 128) / 32, l = e % 32;
        uint8_t& low = b.ql[64 * h + l + (p % 2 ? 32 : 0)];
        low = static_cast<uint8_t>(low | ((u & 0xF) << (p >= 2 ? 4 : 0)));
        b.qh[32 * h + l] = static_cast<uint8_t>(b.qh[32 * h + l] | ((u >> 4) << (2 * p)));
    }
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(sc[j]);
    b.d = kHalf0_125;
    std::vector<double> want(256);
    for (int e = 0; e < 256; ++e) want[e] = 0.125 * sc[e / 16] * L[e];
    expect_exact(decode(Type::Q6_K, b), want);
}

// ---------------------------------------------------------------------------------------------
// Quantizers on inputs whose result is known by hand.

TEST(QuantKnownAnswer, Q4_0QuantizesAGridExactly) {
    // x_j = ((j % 16) - 8) / 4: the first value of largest magnitude is -2 = -8·d, so d = 0.25
    // and each x sits exactly on level (j % 16).
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16 - 8) * 0.25f;
    block_q4_0 b{};
    quantize_row(Type::Q4_0, x, &b, 32);
    EXPECT_EQ(b.d, kHalf0_25);
    for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
}

TEST(QuantKnownAnswer, Q4_1QuantizesAGridExactly) {
    // min 1, max 8.5: d = 7.5 / 15 = 0.5, levels (j % 16).
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = 1.0f + 0.5f * static_cast<float>(j % 16);
    block_q4_1 b{};
    quantize_row(Type::Q4_1, x, &b, 32);
    EXPECT_EQ(b.d, kHalf0_5);
    EXPECT_EQ(b.m, kHalf1);
    for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | (j << 4)) << j;
}

TEST(QuantKnownAnswer, Q5_0AndQ5_1QuantizeAGridExactly) {
    // Q5_0: x_j = (j - 16) / 8, extreme -2 = -16·d, d = 0.125, level j. Q5_1: x_j = 2 + j/4,
    // d = 7.75 / 31 = 0.25, level j. Either way levels 16..31 (the upper half) have bit 4 set.
    float x0[32], x1[32];
    for (int j = 0; j < 32; ++j) {
        x0[j] = static_cast<float>(j - 16) * 0.125f;
        x1[j] = 2.0f + 0.25f * static_cast<float>(j);
    }
    block_q5_0 b0{};
    block_q5_1 b1{};
    quantize_row(Type::Q5_0, x0, &b0, 32);
    quantize_row(Type::Q5_1, x1, &b1, 32);
    EXPECT_EQ(b0.d, kHalf0_125);
    EXPECT_EQ(b1.d, kHalf0_25);
    EXPECT_EQ(b1.m, 0x4000);  // 2.0
    const uint8_t upper_half_set[4] = {0x00, 0x00, 0xff, 0xff};
    EXPECT_EQ(std::memcmp(b0.qh, upper_half_set, 4), 0);
    EXPECT_EQ(std::memcmp(b1.qh, upper_half_set, 4), 0);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(b0.qs[j], j | (j << 4)) << j;
        EXPECT_EQ(b1.qs[j], j | (j << 4)) << j;
    }
}

// With amax = 127 both 8-bit quantizers use d = 1 and multiplier 1, so the quants are the
// inputs rounded: the weight quantizer rounds halves away from zero (roundf), the activation
// quantizer of llama.cpp's x86 backend to even.
TEST(QuantKnownAnswer, Q8_0WeightAndActivationRoundHalvesDifferently) {
    const float ties[] = {2.5f, -2.5f, 0.5f, -0.5f, 1.5f, 3.5f, -126.5f, 0.49999997f};
    const int away[] = {3, -3, 1, -1, 2, 4, -127, 0};
    const int even[] = {2, -2, 0, 0, 2, 4, -126, 0};
    float x[32] = {127.0f};
    for (int j = 0; j < 8; ++j) x[1 + j] = ties[j];
    block_q8_0 w{}, a{};
    quantize_row(Type::Q8_0, x, &w, 32);
    traits(Type::Q8_0).quantize_activation(x, &a, 32);
    EXPECT_EQ(w.d, kHalf1);
    EXPECT_EQ(a.d, kHalf1);
    EXPECT_EQ(w.qs[0], 127);
    EXPECT_EQ(a.qs[0], 127);
    for (int j = 0; j < 8; ++j) {
        EXPECT_EQ(w.qs[1 + j], away[j]) << ties[j];
        EXPECT_EQ(a.qs[1 + j], even[j]) << ties[j];
    }
}

TEST(QuantKnownAnswer, Q8_1ActivationCarriesTheScaledSum) {
    // amax 127: d = 1, quants = x rounded to even, s = Σq = 127 + 2 - 6 + 4 = 127.
    float x[32] = {127.0f, 2.5f, -6.0f, 3.5f};
    block_q8_1 b{};
    traits(Type::Q8_1).quantize_activation(x, &b, 32);
    EXPECT_EQ(b.d, kHalf1);
    EXPECT_EQ(b.qs[1], 2);
    EXPECT_EQ(b.qs[3], 4);
    EXPECT_EQ(b.s, 0x57f0);  // 127.0 as f16
}

TEST(QuantKnownAnswer, Q8_KActivationMapsTheSignedExtremeToMinus127) {
    // The largest magnitude is x[5] = -127: scale -127 / -127 = 1, d = 1; a positive extreme
    // would flip the sign of d instead. Quants are rounded to even.
    float x[256] = {};
    x[5] = -127.0f;
    x[17] = 2.5f;   // → 2
    x[18] = 3.5f;   // → 4
    x[255] = 1.0f;  // → 1
    block_q8_K b{};
    traits(Type::Q8_K).quantize_activation(x, &b, 256);
    EXPECT_EQ(b.d, 1.0f);
    EXPECT_EQ(b.qs[5], -127);
    EXPECT_EQ(b.qs[17], 2);
    EXPECT_EQ(b.qs[18], 4);
    const int16_t bsums[16] = {-127, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    for (int g = 0; g < 16; ++g) EXPECT_EQ(b.bsums[g], bsums[g]) << g;

    for (float& v : x) v = -v;  // extreme now +127: d = -1, quants negated
    traits(Type::Q8_K).quantize_activation(x, &b, 256);
    EXPECT_EQ(b.d, -1.0f);
    EXPECT_EQ(b.qs[5], -127);
    EXPECT_EQ(b.qs[17], 2);
}

}  // namespace
}  // namespace strata
