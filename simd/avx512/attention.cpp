// AVX-512 products of attention (see kernels.h) in ggml_vec_dot_f32's order: one row against up
// to four vectors, so that the heads of a KV group share every load of the key or value row, and
// four rows by four vectors in four passes (simd::dot_f32_vec_prefix_4x4's plan, with its
// sixteen accumulators in registers). Each product equals simd::dot_f32_vec_prefix bit for bit.
// And the batched weighted sums in tinyBLAS's order (simd::dot_f32_gemm_4x4, whose compiled
// clone keeps its sixteen accumulators in memory), equal to it bit for bit. Both end with sixteen
// reductions, done side by side (reduce_add_16).
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include <algorithm>

#include "simd/avx512/kernels.h"
#include "simd/float_order.h"

// Products and sums must round where the reference rounds: no contraction into fused
// multiply-adds beyond the ones written.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

namespace strata::quant::avx512 {
namespace {

// The first `count` (1..16) lanes.
inline __mmask16 first_lanes(int64_t count) {
    return static_cast<__mmask16>((1u << count) - 1u);
}

template <int C>
void prefix_rows(const float* x, const float* const* y, int64_t n, int64_t n_total, float* out) {
    const int64_t whole = n_total & ~int64_t{63};
    const int64_t lanes = std::min(n, whole);
    __m512 acc[C][4];
    for (int c = 0; c < C; ++c)
        for (int a = 0; a < 4; ++a) acc[c][a] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= lanes; i += 64) {
        for (int a = 0; a < 4; ++a) {
            const __m512 xv = _mm512_loadu_ps(x + i + 16 * a);
            for (int c = 0; c < C; ++c)
                acc[c][a] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(y[c] + i + 16 * a), acc[c][a]);
        }
    }
    // The last partial step: lanes past `lanes` load zeros, and adding a zero product leaves an
    // accumulator as it is (it starts at +0 and no sum of products gives -0 from there).
    for (int a = 0; a < 4 && i + 16 * a < lanes; ++a) {
        const __mmask16 mask = first_lanes(std::min<int64_t>(16, lanes - i - 16 * a));
        const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i + 16 * a);
        for (int c = 0; c < C; ++c)
            acc[c][a] =
                _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mask, y[c] + i + 16 * a), acc[c][a]);
    }
    for (int c = 0; c < C; ++c) {
        const float sum = reduce_add(_mm512_add_ps(_mm512_add_ps(acc[c][0], acc[c][2]),
                                                   _mm512_add_ps(acc[c][1], acc[c][3])));
        out[c] = simd::add_vec_remainder(x, y[c], whole, n, n_total, sum);
    }
}

// Lane p = reduce_add(v[p]) for sixteen vectors at once, each sum in reduce_add's tree (lanes
// i + (i + 8), then i + (i + 4), then 0 + 2 and 1 + 3, then the two), so the same bits: every
// step adds the halves of two vectors side by side, 46 instructions in place of sixteen
// reductions of eight each. In the last step lane 4j + e holds the sum of vector j + 4e, which
// the final permutation puts in lane j + 4e.
inline __m512 reduce_add_16(const __m512 (&v)[16]) {
    __m512 h[8], q[4], r[2];
    for (int m = 0; m < 8; ++m)  // h[m]: lanes 0..7 of vector 2m, 8..15 of vector 2m + 1
        h[m] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)),
                             _mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)));
    for (int m = 0; m < 4; ++m)  // q[m]: 128-bit lane j holds vector 4m + j
        q[m] = _mm512_add_ps(_mm512_shuffle_f32x4(h[2 * m], h[2 * m + 1], _MM_SHUFFLE(3, 1, 3, 1)),
                             _mm512_shuffle_f32x4(h[2 * m], h[2 * m + 1], _MM_SHUFFLE(2, 0, 2, 0)));
    for (int m = 0; m < 2; ++m)  // r[m], 128-bit lane j: vector 8m + j in 0..1, 8m + 4 + j in 2..3
        r[m] = _mm512_add_ps(_mm512_shuffle_ps(q[2 * m], q[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(q[2 * m], q[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(r[0], r[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(r[0], r[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(order, s);
}

// acc[4r + c] += x[r][i + l] · y[c][i + l] for the lanes l in mask (the others load zeros).
__attribute__((always_inline)) inline void fma_4x4(__m512 (&acc)[16], const float* const* x,
                                                   const float* const* y, int64_t i,
                                                   __mmask16 mask) {
    __m512 xv[4], yv[4];
    for (int r = 0; r < 4; ++r) {
        xv[r] = _mm512_maskz_loadu_ps(mask, x[r] + i);
        yv[r] = _mm512_maskz_loadu_ps(mask, y[r] + i);
    }
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) acc[r * 4 + c] = _mm512_fmadd_ps(xv[r], yv[c], acc[r * 4 + c]);
}

}  // namespace

void vec_dot_f32_prefix_4x4(const float* const* x, const float* const* y, int64_t n,
                            int64_t n_total, float* out) {
    const int64_t whole = n_total & ~int64_t{63};
    const int64_t lanes = std::min(n, whole);
    const int64_t steps = lanes / 64 * 64;  // whole steps of 64; the partial one follows
    // Pass a runs accumulator a of all sixteen products (elements 64s + 16a + l). Rows past
    // kOnePass go in chunks of kChunk: the four passes over one chunk of the eight rows (32 KiB)
    // while it is in L1, the accumulators kept in part[] between chunks, each still taking its
    // steps in order. Four passes over whole rows read long rows (values at depth: 16 KiB each
    // at 4,096 positions) four times from L2: 17-25 against 41-43 GFMA/s at 4,096 and 8,192 on
    // a Zen 5 core. Shorter rows (keys: 576) fit L1 whole and go in one pass each.
    constexpr int64_t kChunk = 1024, kOnePass = 1536;
    const int64_t chunk = steps > kOnePass ? kChunk : steps;
    __m512 part[4][16];
    for (int64_t c0 = 0;; c0 += chunk) {
        const int64_t c1 = std::min(steps, c0 + chunk);
        const bool last = c1 == steps;
        for (int a = 0; a < 4; ++a) {
            __m512 acc[16];
            if (c0 == 0) {
                for (__m512& v : acc) v = _mm512_setzero_ps();
            } else {
                for (int p = 0; p < 16; ++p) acc[p] = part[a][p];
            }
            for (int64_t i = c0 + 16 * a; i < c1; i += 64) fma_4x4(acc, x, y, i, 0xFFFF);
            // This accumulator's share of the partial step; lanes past `lanes` load zeros,
            // which leave an accumulator as it is (see prefix_rows).
            const int64_t k = steps + 16 * a;
            if (last && k < lanes)
                fma_4x4(acc, x, y, k, first_lanes(std::min<int64_t>(16, lanes - k)));
            for (int p = 0; p < 16; ++p) part[a][p] = acc[p];
        }
        if (last) break;
    }
    __m512 whole_sums[16];
    for (int p = 0; p < 16; ++p)
        whole_sums[p] = _mm512_add_ps(_mm512_add_ps(part[0][p], part[2][p]),
                                      _mm512_add_ps(part[1][p], part[3][p]));
    // simd::add_vec_remainder of the sixteen products side by side, product p = 4r + c in lane
    // p: each lane takes the scalar loop's steps in its order (all of them where n_total < 64,
    // as for small heads).
    __m512 sum = reduce_add_16(whole_sums);
    const int64_t tail = simd::fused_tail_start(whole, n_total);
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (int64_t k = whole; k < n; ++k) {
        const __m128 x4 = _mm_setr_ps(x[0][k], x[1][k], x[2][k], x[3][k]);
        const __m128 y4 = _mm_setr_ps(y[0][k], y[1][k], y[2][k], y[3][k]);
        const __m512 xs = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(x4));
        const __m512 ys = _mm512_broadcast_f32x4(y4);
        sum = k < tail ? _mm512_add_ps(sum, _mm512_mul_ps(xs, ys)) : _mm512_fmadd_ps(xs, ys, sum);
    }
    _mm512_storeu_ps(out, sum);
}

void dot_f32_gemm_4x4(const float* const* x, const float* const* y, int64_t n, float* out) {
    // Lane l of product p = 4r + c takes elements l, l + 16, ... of x[r] · y[c]; a last partial
    // step updates only its first lanes (merge masking), as the scalar loop does. The step is
    // written out: through a step lambda or fma_4x4 GCC 12 kept these accumulators in memory
    // (30-35 GFMA/s on a Zen 5 core, as the compiled scalar twin, against 52-90 so).
    __m512 acc[16];
    for (__m512& v : acc) v = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 xv[4], yv[4];
        for (int r = 0; r < 4; ++r) {
            xv[r] = _mm512_loadu_ps(x[r] + i);
            yv[r] = _mm512_loadu_ps(y[r] + i);
        }
        for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c)
                acc[r * 4 + c] = _mm512_fmadd_ps(xv[r], yv[c], acc[r * 4 + c]);
    }
    if (i < n) {
        const __mmask16 mask = first_lanes(n - i);
        __m512 xv[4], yv[4];
        for (int r = 0; r < 4; ++r) {
            xv[r] = _mm512_maskz_loadu_ps(mask, x[r] + i);
            yv[r] = _mm512_maskz_loadu_ps(mask, y[r] + i);
        }
        for (int r = 0; r < 4; ++r)
            for (int c = 0; c < 4; ++c)
                acc[r * 4 + c] = _mm512_mask3_fmadd_ps(xv[r], yv[c], acc[r * 4 + c], mask);
    }
    _mm512_storeu_ps(out, reduce_add_16(acc));
}

void vec_dot_f32_prefix_rows(const float* x, const float* const* y, int n_y, int64_t n,
                             int64_t n_total, float* out) {
    for (; n_y >= 4; n_y -= 4, y += 4, out += 4) prefix_rows<4>(x, y, n, n_total, out);
    if (n_y == 3) prefix_rows<3>(x, y, n, n_total, out);
    if (n_y == 2) prefix_rows<2>(x, y, n, n_total, out);
    if (n_y == 1) prefix_rows<1>(x, y, n, n_total, out);
}

}  // namespace strata::quant::avx512
