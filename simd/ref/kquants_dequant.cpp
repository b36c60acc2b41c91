// Dequantization of the K-quants (256-element super-blocks), bit for bit as ggml computes it:
// the per-sub-block factors d·scale and dmin·min are formed first, in float, then applied to
// each level (x = (d·scale)·level − dmin·min). Bit layouts: kquants_levels.h.
#include "simd/quant.h"
#include "simd/ref/common.h"
#include "simd/ref/kquants_levels.h"
#include "simd/ref/ref.h"

namespace strata::quant::ref {

void dequantize_q2_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q2_K*>(src);
    int8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        levels_q2_K(b[i], L);
        const float d = f16(b[i].d), dmin = f16(b[i].dmin);
        // Sub-block j of 16: scale in the low nibble of scales[j], min in the high nibble.
        for (int j = 0; j < QK_K / 16; ++j) {
            const float dl = d * static_cast<float>(b[i].scales[j] & 0xF);
            const float ml = dmin * static_cast<float>(b[i].scales[j] >> 4);
            for (int l = 16 * j; l < 16 * j + 16; ++l) dst[l] = dl * static_cast<float>(L[l]) - ml;
        }
    }
}

void dequantize_q3_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q3_K*>(src);
    int8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        levels_q3_K(b[i], L);
        const float d = f16(b[i].d);
        for (int j = 0; j < QK_K / 16; ++j) {
            const float dl = d * static_cast<float>(unpack_scale_q3(j, b[i].scales));
            for (int l = 16 * j; l < 16 * j + 16; ++l) dst[l] = dl * static_cast<float>(L[l]);
        }
    }
}

namespace {

// Q4_K and Q5_K differ only in their levels.
template <typename Block>
void dequantize_k4(const Block& b, const int8_t* L, float* dst) {
    const float d = f16(b.d), dmin = f16(b.dmin);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        unpack_scale_min_k4(j, b.scales, &sc, &m);
        const float dl = d * static_cast<float>(sc);
        const float ml = dmin * static_cast<float>(m);
        for (int l = 32 * j; l < 32 * j + 32; ++l) dst[l] = dl * static_cast<float>(L[l]) - ml;
    }
}

}  // namespace

void dequantize_q4_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q4_K*>(src);
    int8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        levels_q4_K(b[i], L);
        dequantize_k4(b[i], L, dst);
    }
}

void dequantize_q5_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q5_K*>(src);
    int8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        levels_q5_K(b[i], L);
        dequantize_k4(b[i], L, dst);
    }
}

void dequantize_q6_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q6_K*>(src);
    int8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
        levels_q6_K(b[i], L);
        const float d = f16(b[i].d);
        for (int j = 0; j < QK_K / 16; ++j) {
            const float dl = d * static_cast<float>(b[i].scales[j]);
            for (int l = 16 * j; l < 16 * j + 16; ++l) dst[l] = dl * static_cast<float>(L[l]);
        }
    }
}

}  // namespace strata::quant::ref
