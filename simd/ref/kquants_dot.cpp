// Dot products of the K-quants with Q8_K activations.
//
// Per super-block, everything up to the last step is exact integer arithmetic:
//   isum = Σ_sub scale_sub · Σ_(e in sub) level_e · q8_e
// and for the formats with mins the offset term uses Q8_K's group sums (bsums, 16 elements each):
//   msum = Σ_g min_(sub of g) · bsums_g
// The block then contributes (d_w·d_a)·isum − (dmin_w·d_a)·msum in float, as in ggml. Integer
// ranges: |level·q8| ≤ 32·128, sixteen of them times a scale ≤ 128 per sub-block, sixteen
// sub-blocks: at most 2^27 in magnitude, far from int overflow.
#include "simd/quant.h"
#include "simd/ref/common.h"
#include "simd/ref/kquants_levels.h"
#include "simd/ref/ref.h"

namespace strata::quant::ref {
namespace {

// Σ level·q8 over `len` elements starting at `first`.
int dot_range(const int8_t* L, const int8_t* q8, int first, int len) {
    int sum = 0;
    for (int e = first; e < first + len; ++e) sum += L[e] * q8[e];
    return sum;
}

// Q4_K / Q5_K: eight sub-blocks of 32, 6-bit scales and mins.
template <typename Block>
float dot_k4(const Block& x, const block_q8_K& y, const int8_t* L) {
    int isum = 0, msum = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        unpack_scale_min_k4(j, x.scales, &sc, &m);
        isum += sc * dot_range(L, y.qs, 32 * j, 32);
        msum += m * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
    }
    const float d = f16(x.d) * y.d;
    const float dmin = f16(x.dmin) * y.d;
    return d * static_cast<float>(isum) - dmin * static_cast<float>(msum);
}

}  // namespace

float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q2_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    int8_t L[QK_K];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels_q2_K(x[i], L);
        int isum = 0, msum = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            isum += (x[i].scales[j] & 0xF) * dot_range(L, y[i].qs, 16 * j, 16);
            msum += (x[i].scales[j] >> 4) * y[i].bsums[j];
        }
        const float dall = y[i].d * f16(x[i].d);
        const float dmin = y[i].d * f16(x[i].dmin);
        sum += dall * static_cast<float>(isum) - dmin * static_cast<float>(msum);
    }
    return sum;
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q3_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    int8_t L[QK_K];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels_q3_K(x[i], L);
        int isum = 0;
        for (int j = 0; j < QK_K / 16; ++j)
            isum += unpack_scale_q3(j, x[i].scales) * dot_range(L, y[i].qs, 16 * j, 16);
        sum += (f16(x[i].d) * y[i].d) * static_cast<float>(isum);
    }
    return sum;
}

float vec_dot_q4_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    int8_t L[QK_K];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels_q4_K(x[i], L);
        sum += dot_k4(x[i], y[i], L);
    }
    return sum;
}

float vec_dot_q5_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    int8_t L[QK_K];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels_q5_K(x[i], L);
        sum += dot_k4(x[i], y[i], L);
    }
    return sum;
}

float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q6_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    int8_t L[QK_K];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels_q6_K(x[i], L);
        int isum = 0;
        for (int j = 0; j < QK_K / 16; ++j)
            isum += x[i].scales[j] * dot_range(L, y[i].qs, 16 * j, 16);
        sum += (f16(x[i].d) * y[i].d) * static_cast<float>(isum);
    }
    return sum;
}

// Q8_K is an activation format; ggml has no kernel for it as a weight. This one exists so that
// every supported type has a dot product.
float vec_dot_q8_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q8_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i)
        sum += (x[i].d * y[i].d) * static_cast<float>(dot_range(x[i].qs, y[i].qs, 0, QK_K));
    return sum;
}

}  // namespace strata::quant::ref
