// Half-precision conversions (simd/fp16.h) against independent math in double precision:
// decoding from the IEEE definitions for every one of the 65536 bit patterns, encoding by
// rounding |x| / quantum to the nearest integer, ties to even, with the quantum of x's binade.
#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "simd/fp16.h"

namespace strata {
namespace {

// binary16: 1 sign, 5 exponent (bias 15), 10 fraction bits.
double half_value(uint16_t h) {
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    const int exp = (h >> 10) & 0x1f;
    const int frac = h & 0x3ff;
    if (exp == 0x1f) return frac ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
    if (exp == 0) return sign * std::ldexp(frac, -24);  // subnormal: frac · 2^-24
    return sign * std::ldexp(1024 + frac, exp - 25);    // (1 + frac/1024) · 2^(exp-15)
}

// x rounded to binary16, to nearest, ties to even, as a double (±inf on overflow).
double round_to_half(double x) {
    const double ax = std::fabs(x);
    // The largest half is 65504 = (2 - 2^-10)·2^15; halfway to the next binade is 65520, and
    // the tie goes to the even neighbour, which is 2^16: infinity.
    if (ax >= 65520.0) return std::copysign(INFINITY, x);
    int e;
    std::frexp(ax, &e);  // ax = m·2^e, m in [0.5, 1)
    const int quantum_exp = ax < std::ldexp(1.0, -14) ? -24 : e - 11;
    const double q = std::nearbyint(std::ldexp(ax, -quantum_exp));  // default mode: ties to even
    return std::copysign(std::ldexp(q, quantum_exp), x);
}

// x rounded to bfloat16 (8 significant bits, float's exponent range), as a double.
double round_to_bf16(double x) {
    const double ax = std::fabs(x);
    // Largest bf16: (2 - 2^-7)·2^127; the tie with 2^128 is (2 - 2^-8)·2^127 and goes to inf.
    if (ax >= std::ldexp(2.0 - std::ldexp(1.0, -8), 127)) return std::copysign(INFINITY, x);
    int e;
    std::frexp(ax, &e);
    const int quantum_exp = ax < std::ldexp(1.0, -126) ? -133 : e - 8;
    const double q = std::nearbyint(std::ldexp(ax, -quantum_exp));
    return std::copysign(std::ldexp(q, quantum_exp), x);
}

TEST(Fp16, DecodesEveryPatternAsDefined) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float got = fp16_to_fp32(static_cast<uint16_t>(h));
        const double want = half_value(static_cast<uint16_t>(h));
        if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got)) << std::hex << h;
        } else {
            ASSERT_EQ(static_cast<double>(got), want) << std::hex << h;
            EXPECT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;
        }
    }
}

TEST(Fp16, EncodesToNearestEvenIncludingTiesSubnormalsAndOverflow) {
    // Every half, the exact midpoints between neighbours (ties), and points just off them.
    for (uint32_t h = 0; h < 0x7c00; ++h) {
        const double lo = half_value(static_cast<uint16_t>(h));
        const double hi = h + 1 < 0x7c00 ? half_value(static_cast<uint16_t>(h + 1)) : 65536.0;
        // Exact in float: the midpoint has at most 12 significant bits.
        const auto mid = static_cast<float>((lo + hi) / 2);
        const float lo_f = static_cast<float>(lo);
        for (float f : {lo_f, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
            for (float s : {f, -f}) {
                const uint16_t bits = fp32_to_fp16(s);
                ASSERT_EQ(static_cast<double>(fp16_to_fp32(bits)), round_to_half(s))
                    << "x = " << s << " (between halves 0x" << std::hex << h << " and the next)";
                ASSERT_EQ((bits & 0x8000) != 0, std::signbit(s)) << s;
            }
        }
    }
}

TEST(Fp16, EncodesRandomFloatsAndSpecials) {
    std::mt19937 rng(7);
    for (int i = 0; i < 1000000; ++i) {
        const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
        if (std::isnan(f)) continue;
        ASSERT_EQ(static_cast<double>(fp16_to_fp32(fp32_to_fp16(f))), round_to_half(f)) << f;
    }
    EXPECT_EQ(fp32_to_fp16(INFINITY), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7bff);  // just below the tie: stays finite
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);    // the tie: rounds to even, i.e. infinity
    EXPECT_EQ(fp32_to_fp16(FLT_MAX), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie with zero: even is zero
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 quanta: tie, to even 2
    const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
    EXPECT_TRUE(std::isnan(fp16_to_fp32(nan)));
    const uint16_t snan =
        fp32_to_fp16(std::bit_cast<float>(0x7f800001u));  // signalling, tiny payload
    EXPECT_TRUE(std::isnan(fp16_to_fp32(snan))) << "a NaN must not turn into infinity";
}

TEST(Bf16, DecodesByShifting) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float got = bf16_to_fp32(static_cast<uint16_t>(h));
        EXPECT_EQ(std::bit_cast<uint32_t>(got), h << 16);
    }
}

TEST(Bf16, EncodesToNearestEvenIncludingTiesSubnormalsAndOverflow) {
    std::mt19937 rng(11);
    for (int i = 0; i < 1000000; ++i) {
        uint32_t bits = static_cast<uint32_t>(rng());
        // Every fourth value is forced onto a tie (low 16 bits = 0x8000) or next to one.
        if (i % 4 == 1) bits = (bits & 0xffff0000u) | 0x8000u;
        if (i % 4 == 2) bits = (bits & 0xffff0000u) | 0x7fffu;
        if (i % 4 == 3) bits = (bits & 0xffff0000u) | 0x8001u;
        const float f = std::bit_cast<float>(bits);
        if (std::isnan(f)) continue;
        ASSERT_EQ(static_cast<double>(bf16_to_fp32(fp32_to_bf16(f))), round_to_bf16(f))
            << std::hex << bits;
    }
    EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie
    EXPECT_EQ(fp32_to_bf16(FLT_MAX), 0x7f80);                            // overflow to inf
    EXPECT_EQ(fp32_to_bf16(-INFINITY), 0xff80);
    const uint16_t nan = fp32_to_bf16(std::bit_cast<float>(0x7f800001u));  // payload below bit 16
    EXPECT_TRUE(std::isnan(bf16_to_fp32(nan))) << "a NaN must not turn into infinity";
}

}  // namespace
}  // namespace strata
