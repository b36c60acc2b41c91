// Small AVX-512 building blocks shared by the tile kernels of this folder (AVX-512 translation
// units only), and the driver that splits a tile into groups of activation rows.
#pragma once

// GCC 12's AVX-512 intrinsics (_mm512_cvtepi32_ps, _mm512_max_ps, _mm512_shuffle_i64x2, ...)
// start from a self-initialised "undefined" vector that -Wmaybe-uninitialized flags once they
// are inlined; the value is never read. The pragma has to come before immintrin.h, so this header
// is the first include of the files that use it (AVX-512 translation units only).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "simd/row_tile.h"

namespace strata::quant::avx512 {

// _mm512_reduce_add_ps's order: halves (i, i+8), then (i, i+4), then (0+2, 1+3), then the two.
inline float reduce_add(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, v, 1),
                                   _mm512_maskz_extractf32x8_ps(0xFF, v, 0));
    const __m128 q = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
    const __m128 r = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)));
}

// Sum of the 8 lanes.
inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Sum of the 8 int32 lanes.
inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

// Half-precision scale to float (F16C; exact, like fp16_to_fp32).
inline float half(uint16_t h) {
    return _cvtsh_ss(h);
}

// The most activation rows a kernel keeps accumulators for: 8 rows x 2 accumulators stay within
// the 32 vector registers beside the unpacked weight block (ik_llama.cpp uses the same bound).
inline constexpr int kMaxRows = 8;

// Every weight row against groups of up to kMaxRows activation rows (simd/row_tile.h).
template <typename Kernel>
void run_tile(int64_t n_blocks, const uint8_t* w, size_t w_stride, int64_t n_w, const uint8_t* a,
              size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    simd::run_row_tile<Kernel, kMaxRows>(n_blocks, w, w_stride, n_w, a, a_stride, n_a, y, y_stride);
}

}  // namespace strata::quant::avx512
