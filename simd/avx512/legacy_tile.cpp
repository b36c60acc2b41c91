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

// Two weight rows side by side in one 512-bit vector (row r in the low half, r + 1 in the high
// half) against NA activation rows, each broadcast to both halves: one vpdpbusd serves both rows,
// where Signed32 takes one 256-bit vpdpbusd per row. Each half is its row's eight lanes with
// Signed32's operations in its order (d_w·d_a as one float product, one FMA per block, the
// lanes summed as hsum256), so the floats are the same bits. Batches only (NA ≥ 2): with one
// activation row it gains nothing on weights in cache, and on weights read from memory it ran at
// a third of the row kernel's speed (TileMatvec, Zen 5: Q8_0 25.6 -> 8.2 GB/s, Q4_0 11.3 -> 5.2):
// two rows side by side are two interleaved streams 2 KiB apart, which the hardware prefetcher
// did not follow.
template <typename Block>
struct Signed32Pair {
    template <int NA>
    static void row(int64_t nb, const uint8_t* w, size_t w_stride, const uint8_t* a,
                    size_t a_stride, float* y, int64_t y_stride) {
        const auto* x0 = reinterpret_cast<const Block*>(w);
        const auto* x1 = reinterpret_cast<const Block*>(w + w_stride);
        const __m512i zero = _mm512_setzero_si512();
        __m512 acc[NA];
        for (int t = 0; t < NA; ++t) acc[t] = _mm512_setzero_ps();
        for (int64_t i = 0; i < nb; ++i) {
            const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(signed_levels(x0[i])),
                                                 signed_levels(x1[i]), 1);
            const __m512i magnitude = _mm512_abs_epi8(q);
            const __mmask64 negative = _mm512_movepi8_mask(q);
            const __m512 d =
                _mm512_insertf32x8(_mm512_set1_ps(half(x0[i].d)), _mm256_set1_ps(half(x1[i].d)), 1);
            for (int t = 0; t < NA; ++t) {
                const auto* yb = reinterpret_cast<const block_q8_0*>(a + t * a_stride) + i;
                const __m512i q8 = _mm512_broadcast_i64x4(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb->qs)));
                const __m512i signed_q8 = _mm512_mask_sub_epi8(q8, negative, zero, q8);
                const __m512i dot = _mm512_dpbusd_epi32(zero, magnitude, signed_q8);
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(half(yb->d))),
                                         _mm512_cvtepi32_ps(dot), acc[t]);
            }
        }
        for (int t = 0; t < NA; ++t) {
            y[t * y_stride] = hsum256(_mm512_castps512_ps256(acc[t]));
            y[t * y_stride + 1] = hsum256(_mm512_extractf32x8_ps(acc[t], 1));
        }
    }
};

// Batches by pairs of weight rows (a last odd row, and single activation rows, by Signed32).
template <typename Block>
void run_signed(int64_t nb, const uint8_t* w, size_t w_stride, int64_t n_w, const uint8_t* a,
                size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    using Pair = Signed32Pair<Block>;
    int64_t r = 0;
    for (; n_a >= 2 && r + 2 <= n_w; r += 2) {
        const uint8_t* wr = w + static_cast<size_t>(r) * w_stride;
        int64_t t = 0;
        for (; t + kMaxRows <= n_a; t += kMaxRows)
            Pair::template row<kMaxRows>(nb, wr, w_stride, a + static_cast<size_t>(t) * a_stride,
                                         a_stride, y + t * y_stride + r, y_stride);
        if (t < n_a)
            simd::row_upto<Pair, kMaxRows - 1>(n_a - t, nb, wr, w_stride,
                                               a + static_cast<size_t>(t) * a_stride, a_stride,
                                               y + t * y_stride + r, y_stride);
    }
    if (r < n_w)
        run_tile<Signed32<Block>>(nb, w + static_cast<size_t>(r) * w_stride, w_stride, n_w - r, a,
                                  a_stride, n_a, y + r, y_stride);
}

}  // namespace

void tile_q8_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_signed<block_q8_0>(n / QK8_0, static_cast<const uint8_t*>(w), w_stride, n_w,
                           static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q4_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_signed<block_q4_0>(n / QK4_0, static_cast<const uint8_t*>(w), w_stride, n_w,
                           static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q5_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_signed<block_q5_0>(n / QK5_0, static_cast<const uint8_t*>(w), w_stride, n_w,
                           static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

}  // namespace strata::quant::avx512
