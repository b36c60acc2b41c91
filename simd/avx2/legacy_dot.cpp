// AVX2 dot products of the legacy formats. Symmetric ones with Q8_0: one 32-element block per
// step, levels widened to signed bytes, an exact int32 block sum, then acc += (d_w·d_a)·sum in
// float. Q4_1 / Q5_1 with Q8_1: the unsigned levels against Q8_1's signed ones in eight int32
// lanes of four products each, acc += (d_w·d_a)·lanes lane by lane, and the minimum's share
// m_w·s_a (Q8_1's s = d·Σq) summed apart in one fused multiply-add per block; the two meet at
// the end. That is llama.cpp's AVX2 order (its compiler fuses the m·s sum), which its AVX-512
// build runs too.
#include <immintrin.h>

#include <cmath>

#include "simd/avx2/kernels.h"
#include "simd/avx2/util.h"
#include "simd/fp16.h"
#include "simd/quant.h"

namespace strata::quant::avx2 {
namespace {

// Σ_blocks (d_w·d_a)·Σ level·q8, with `levels(block)` giving a block's 32 signed levels.
template <typename Block, typename Levels>
float dot_with_q8_0(int64_t n, const void* w, const void* a, Levels levels) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
        const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
        const __m256i sum = dot_i8(levels(x[i]), qy);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum(acc);
}

}  // namespace

float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q4_0>(n, w, a, [](const block_q4_0& b) {
        return _mm256_sub_epi8(nibbles_32(b.qs), _mm256_set1_epi8(8));
    });
}

float vec_dot_q5_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q5_0>(n, w, a, [](const block_q5_0& b) {
        // Fifth bit set → +16; levels 0..31 centred by -16.
        const __m256i high = _mm256_and_si256(bits_32(b.qh), _mm256_set1_epi8(0x10));
        return _mm256_sub_epi8(_mm256_or_si256(nibbles_32(b.qs), high), _mm256_set1_epi8(16));
    });
}

namespace {

// Σ_blocks (d_w·d_a)·Σ level·q8 + Σ_blocks m_w·s_a, with `levels(block)` giving a block's 32
// unsigned levels (0..31).
template <typename Block, typename Levels>
float dot_with_q8_1(int64_t n, const void* w, const void* a, Levels levels) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const block_q8_1*>(a);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        mins = std::fma(fp16_to_fp32(x[i].m), fp16_to_fp32(y[i].s), mins);
        const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
        const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
        // Unsigned levels times signed bytes: maddubs directly, pair sums below 2·31·128.
        const __m256i sum =
            _mm256_madd_epi16(_mm256_maddubs_epi16(levels(x[i]), qy), _mm256_set1_epi16(1));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum(acc) + mins;
}

}  // namespace

float vec_dot_q4_1(int64_t n, const void* w, const void* a) {
    return dot_with_q8_1<block_q4_1>(n, w, a, [](const block_q4_1& b) { return nibbles_32(b.qs); });
}

float vec_dot_q5_1(int64_t n, const void* w, const void* a) {
    return dot_with_q8_1<block_q5_1>(n, w, a, [](const block_q5_1& b) {
        const __m256i high = _mm256_and_si256(bits_32(b.qh), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(nibbles_32(b.qs), high);
    });
}

float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q8_0>(n, w, a, [](const block_q8_0& b) {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    });
}

}  // namespace strata::quant::avx2
