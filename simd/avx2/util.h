// Small AVX2 building blocks shared by the kernels of this folder (AVX2 translation units only).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace strata::quant::avx2 {

// Sum of the 8 lanes.
inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Σ x·y over groups of four int8 pairs, as 8 int32 lanes. maddubs multiplies unsigned by
// signed bytes, so x's sign moves onto y first; pair sums stay below the int16 limit as long as
// not both bytes of a pair are -128 · -128 (quantizers never produce -128).
inline __m256i dot_i8(__m256i x, __m256i y) {
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

// The 32 nibbles of 16 bytes in element order: low nibbles are elements 0..15, high nibbles
// 16..31 (the legacy layout).
inline __m256i nibbles_32(const uint8_t* p) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(bytes, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    return _mm256_set_m128i(hi, lo);
}

// 32 bits (little-endian word at p) spread to 32 bytes: 0xFF where the bit is set.
inline __m256i bits_32(const uint8_t* p) {
    uint32_t word;
    std::memcpy(&word, p, sizeof word);
    // Byte k takes source byte k / 8, then keeps bit k % 8.
    const __m256i spread =
        _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(word)),
                            _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
                                             2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i select = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

}  // namespace strata::quant::avx2
