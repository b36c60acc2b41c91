// Dot products of the K-quants with Q8_K activations.
//
// Per super-block, everything up to the last step is exact integer arithmetic:
//   isum = Σ_sub scale_sub · Σ_(e in sub) level_e · q8_e
// and for the formats with mins the offset term uses Q8_K's group sums (bsums, 16 elements each):
//   msum = Σ_g min_(sub of g) · bsums_g
// The block then contributes (d_w·d_a)·isum − (dmin_w·d_a)·msum in float. Integer ranges:
// |level·q8| ≤ 32·128, sixteen of them times a scale ≤ 128 per sub-block, sixteen sub-blocks: at
// most 2^27 in magnitude, far from int overflow.
//
// The float steps are llama.cpp's AVX2 kernels' (simd/avx2/kquants_dot.cpp), which its AVX-512
// build runs and the golden logits were made with: the integer sums are split into eight lanes,
// lane k holding the elements e with (e mod 32) / 4 = k, each lane converted and fused into its
// own float accumulator per super-block, the lanes added at the end in hsum_float_8's tree.
// ggml's scalar loop (one float sum, d·isum − dmin·msum per block) rounds differently, and
// deepseek2's routing turns such last bits into other experts.
#include <cmath>
#include <cstdint>

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

// lanes[(e % 32) / 4] = Σ scale(e / sub) · L[e] · q8[e] over the QK_K elements, `sub` elements
// per scale.
void lane_sums(const int8_t* L, const int8_t* q8, const int* scales, int sub, int32_t* lanes) {
    for (int k = 0; k < 8; ++k) lanes[k] = 0;
    for (int e = 0; e < QK_K; ++e) lanes[(e % 32) / 4] += scales[e / sub] * L[e] * q8[e];
}

// Q4_K / Q5_K: eight sub-blocks of 32, 6-bit scales and mins. Q4_K keeps the mins' share in
// four more lanes (lane l: sub-blocks 2l and 2l + 1, fused with −dmin) added as (0+2) + (1+3);
// Q5_K sums it in one float (its compiler fuses that multiply-add), subtracted at the end.
template <typename Block, bool kQ5>
float dot_k4(int64_t n, const void* w, const void* a, void (*levels)(const Block&, int8_t*)) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    Lanes8 lanes;
    float acc_mins[4] = {};
    float mins = 0.0f;
    int8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels(x[i], L);
        int sc[8];
        int32_t mlane[4] = {};
        for (int j = 0; j < 8; ++j) {
            uint8_t s, m;
            unpack_scale_min_k4(j, x[i].scales, &s, &m);
            sc[j] = s;
            mlane[j / 2] += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        int32_t isum[8];
        lane_sums(L, y[i].qs, sc, 32, isum);
        lanes.fma_lanes(f16(x[i].d) * y[i].d, isum);
        const float dmin = f16(x[i].dmin) * y[i].d;
        if constexpr (kQ5) {
            mins =
                std::fma(dmin, static_cast<float>(mlane[0] + mlane[1] + mlane[2] + mlane[3]), mins);
        } else {
            for (int l = 0; l < 4; ++l)
                acc_mins[l] = std::fma(-dmin, static_cast<float>(mlane[l]), acc_mins[l]);
        }
    }
    if constexpr (kQ5) return lanes.total() - mins;
    return lanes.total() + ((acc_mins[0] + acc_mins[2]) + (acc_mins[1] + acc_mins[3]));
}

}  // namespace

// Q2_K: the minimum's share first, lane k = min·bsum of groups 2k and 2k + 1 fused with
// −d_a·dmin_w, then the levels' lanes with d_a·d_w.
float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q2_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    Lanes8 lanes;
    int8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels_q2_K(x[i], L);
        int sc[QK_K / 16];
        int32_t mins[8];
        for (int j = 0; j < QK_K / 16; ++j) sc[j] = x[i].scales[j] & 0xF;
        for (int k = 0; k < 8; ++k)
            mins[k] = (x[i].scales[2 * k] >> 4) * y[i].bsums[2 * k] +
                      (x[i].scales[2 * k + 1] >> 4) * y[i].bsums[2 * k + 1];
        lanes.fma_lanes(-y[i].d * f16(x[i].dmin), mins);
        int32_t isum[8];
        lane_sums(L, y[i].qs, sc, 16, isum);
        lanes.fma_lanes(y[i].d * f16(x[i].d), isum);
    }
    return lanes.total();
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q3_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    Lanes8 lanes;
    int8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels_q3_K(x[i], L);
        int sc[QK_K / 16];
        for (int j = 0; j < QK_K / 16; ++j) sc[j] = unpack_scale_q3(j, x[i].scales);
        int32_t isum[8];
        lane_sums(L, y[i].qs, sc, 16, isum);
        lanes.fma_lanes(y[i].d * f16(x[i].d), isum);
    }
    return lanes.total();
}

float vec_dot_q4_K(int64_t n, const void* w, const void* a) {
    return dot_k4<block_q4_K, false>(n, w, a, levels_q4_K);
}

float vec_dot_q5_K(int64_t n, const void* w, const void* a) {
    return dot_k4<block_q5_K, true>(n, w, a, levels_q5_K);
}

// Q6_K: the unsigned levels u = L + 32 in the lanes, and the −32 through the group sums, lane k
// losing 32·(scale·bsum) of groups 2k and 2k + 1 — another split of the same integers than
// L·q8's, so the lanes (rounded apart) are these and not those.
float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q6_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    Lanes8 lanes;
    int8_t L[QK_K];
    int8_t U[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        levels_q6_K(x[i], L);
        for (int e = 0; e < QK_K; ++e) U[e] = static_cast<int8_t>(L[e] + 32);
        int sc[QK_K / 16];
        for (int j = 0; j < QK_K / 16; ++j) sc[j] = x[i].scales[j];
        int32_t isum[8];
        lane_sums(U, y[i].qs, sc, 16, isum);
        for (int k = 0; k < 8; ++k)
            isum[k] -= 32 * (sc[2 * k] * y[i].bsums[2 * k] + sc[2 * k + 1] * y[i].bsums[2 * k + 1]);
        lanes.fma_lanes(f16(x[i].d) * y[i].d, isum);
    }
    return lanes.total();
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
