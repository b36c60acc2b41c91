// AVX-512 VNNI tile kernels of the 32-element formats with signed weights (Q8_0, Q4_0, Q5_0) and
// Q8_0 activations.
//
// vpdpbusd multiplies unsigned by signed bytes, so each weight block is unpacked once into
// |w| (unsigned) and a mask of its negative elements; each activation row then costs a masked
// negation and one vpdpbusd per block, exact in int32 (as ggml's sign trick, this assumes no
// activation is -128, which the Q8_0 activation quantizer never produces). The block's eight
// int32 lanes are converted to float and scaled by d_w·d_a with one FMA into a per-row
// accumulator of eight lanes, as llama.cpp's AVX2 kernels do, so the floats are theirs bit for
// bit (tests/quant_tile_test.cpp; registered at avx512 only).
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include <cstring>

#include "simd/avx512/kernels.h"
#include "simd/quant.h"

namespace strata::quant::avx512 {
namespace {

// Q8_0 weights: the quants as they are. Q4_0: element j is the low nibble of qs[j], element
// j + 16 the high nibble, minus 8. Q5_0: the same nibbles with bit j of qh as their fifth bit,
// minus 16.
template <typename Block>
inline __m256i signed_levels(const Block& b) {
    if constexpr (sizeof(Block) == sizeof(block_q8_0)) {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    } else if constexpr (sizeof(Block) == sizeof(block_q5_0)) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
        const __m128i low4 = _mm_set1_epi8(0x0F);
        const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4),
                                           _mm_and_si128(bytes, low4));
        uint32_t qh = 0;
        std::memcpy(&qh, b.qh, sizeof(qh));
        const __m256i u5 =
            _mm256_mask_add_epi8(u, static_cast<__mmask32>(qh), u, _mm256_set1_epi8(16));
        return _mm256_sub_epi8(u5, _mm256_set1_epi8(16));
    } else {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
        const __m128i low4 = _mm_set1_epi8(0x0F);
        const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4),
                                           _mm_and_si128(bytes, low4));
        return _mm256_sub_epi8(u, _mm256_set1_epi8(8));
    }
}

template <typename Block>
struct Signed32 {
    template <int NA>
    static void row(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                    int64_t y_stride) {
        const auto* x = reinterpret_cast<const Block*>(w);
        const __m256i zero = _mm256_setzero_si256();
        __m256 acc[NA];
        for (int t = 0; t < NA; ++t) acc[t] = _mm256_setzero_ps();
        for (int64_t i = 0; i < nb; ++i) {
            const __m256i q = signed_levels(x[i]);
            const __m256i magnitude = _mm256_abs_epi8(q);
            const __mmask32 negative = _mm256_movepi8_mask(q);
            const float d = half(x[i].d);
            for (int t = 0; t < NA; ++t) {
                const auto* yb = reinterpret_cast<const block_q8_0*>(a + t * a_stride) + i;
                const __m256i q8 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb->qs));
                const __m256i signed_q8 = _mm256_mask_sub_epi8(q8, negative, zero, q8);
                const __m256i dot = _mm256_dpbusd_epi32(zero, magnitude, signed_q8);
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * half(yb->d)), _mm256_cvtepi32_ps(dot),
                                         acc[t]);
            }
        }
        for (int t = 0; t < NA; ++t) y[t * y_stride] = hsum256(acc[t]);
    }
};

}  // namespace

void tile_q8_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<Signed32<block_q8_0>>(n / QK8_0, static_cast<const uint8_t*>(w), w_stride, n_w,
                                   static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q4_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<Signed32<block_q4_0>>(n / QK4_0, static_cast<const uint8_t*>(w), w_stride, n_w,
                                   static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q5_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<Signed32<block_q5_0>>(n / QK5_0, static_cast<const uint8_t*>(w), w_stride, n_w,
                                   static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

}  // namespace strata::quant::avx512
