// AVX-512 products of attention's decoding step (see kernels.h): one row against up to four
// vectors in ggml_vec_dot_f32's order, so that the heads of a KV group share every load of the
// key or value row. Each product equals simd::dot_f32_vec_prefix bit for bit.
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
        const int64_t left = std::min<int64_t>(16, lanes - i - 16 * a);
        const auto mask = static_cast<__mmask16>((1u << left) - 1u);
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

}  // namespace

void vec_dot_f32_prefix_rows(const float* x, const float* const* y, int n_y, int64_t n,
                             int64_t n_total, float* out) {
    for (; n_y >= 4; n_y -= 4, y += 4, out += 4) prefix_rows<4>(x, y, n, n_total, out);
    if (n_y == 3) prefix_rows<3>(x, y, n, n_total, out);
    if (n_y == 2) prefix_rows<2>(x, y, n, n_total, out);
    if (n_y == 1) prefix_rows<1>(x, y, n, n_total, out);
}

}  // namespace strata::quant::avx512
