// Legacy 32-element formats: dequantization and the weight quantizers of llama-quantize.
//
// Element j of a block sits in the low nibble of qs[j] and element j + 16 in the high nibble;
// Q5 formats add the fifth bit of element j as bit j of the 32-bit word qh.
#include <cfloat>
#include <cmath>

#include "simd/quant.h"
#include "simd/ref/common.h"
#include "simd/ref/ref.h"

namespace strata::quant::ref {
namespace {

constexpr int kHalf = 16;  // elements per nibble plane of a 32-element block

// The scale of the symmetric formats: the signed value of largest magnitude (the first one on
// ties) maps to -levels, so the extreme is represented exactly and the other side gets one
// level less.
float signed_absmax(const float* x, int count) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < count; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

void min_max(const float* x, int count, float* min, float* max) {
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < count; ++j) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

// llama-quantize truncates `v + offset` (offset = levels + 0.5) towards zero rather than
// rounding; the sum is never negative here, so truncation is floor.
int truncate_level(float v, int hi) {
    return saturate_to_int(v, 0, hi);
}

// roundf: halves away from zero.
int8_t round_away(float v) {
    return static_cast<int8_t>(saturate_to_int(std::round(v), -127, 127));
}

}  // namespace

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q4_0*>(src);
    for (int64_t i = 0; i < n / QK4_0; ++i, dst += QK4_0) {
        const float d = f16(b[i].d);
        for (int j = 0; j < kHalf; ++j) {
            dst[j] = static_cast<float>((b[i].qs[j] & 0xF) - 8) * d;
            dst[j + kHalf] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void quantize_q4_0(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q4_0*>(dst);
    for (int64_t i = 0; i < n / QK4_0; ++i, src += QK4_0) {
        const float d = signed_absmax(src, QK4_0) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = to_f16(d);
        for (int j = 0; j < kHalf; ++j) {
            const int lo = truncate_level(src[j] * id + 8.5f, 15);
            const int hi = truncate_level(src[j + kHalf] * id + 8.5f, 15);
            b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q4_1*>(src);
    for (int64_t i = 0; i < n / QK4_1; ++i, dst += QK4_1) {
        const float d = f16(b[i].d), m = f16(b[i].m);
        for (int j = 0; j < kHalf; ++j) {
            dst[j] = static_cast<float>(b[i].qs[j] & 0xF) * d + m;
            dst[j + kHalf] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void quantize_q4_1(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q4_1*>(dst);
    for (int64_t i = 0; i < n / QK4_1; ++i, src += QK4_1) {
        float min, max;
        min_max(src, QK4_1, &min, &max);
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = to_f16(d);
        b[i].m = to_f16(min);
        for (int j = 0; j < kHalf; ++j) {
            const int lo = truncate_level((src[j] - min) * id + 0.5f, 15);
            const int hi = truncate_level((src[j + kHalf] - min) * id + 0.5f, 15);
            b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q5_0*>(src);
    for (int64_t i = 0; i < n / QK5_0; ++i, dst += QK5_0) {
        const float d = f16(b[i].d);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < kHalf; ++j) {
            const int lo = static_cast<int>((b[i].qs[j] & 0xF) | (((qh >> j) & 1u) << 4));
            const int hi = static_cast<int>((b[i].qs[j] >> 4) | (((qh >> (j + kHalf)) & 1u) << 4));
            dst[j] = static_cast<float>(lo - 16) * d;
            dst[j + kHalf] = static_cast<float>(hi - 16) * d;
        }
    }
}

void quantize_q5_0(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q5_0*>(dst);
    for (int64_t i = 0; i < n / QK5_0; ++i, src += QK5_0) {
        const float d = signed_absmax(src, QK5_0) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < kHalf; ++j) {
            const int lo = truncate_level(src[j] * id + 16.5f, 31);
            const int hi = truncate_level(src[j + kHalf] * id + 16.5f, 31);
            b[i].qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
            qh |= static_cast<uint32_t>(lo >> 4) << j;
            qh |= static_cast<uint32_t>(hi >> 4) << (j + kHalf);
        }
        store_u32(b[i].qh, qh);
    }
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q5_1*>(src);
    for (int64_t i = 0; i < n / QK5_1; ++i, dst += QK5_1) {
        const float d = f16(b[i].d), m = f16(b[i].m);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < kHalf; ++j) {
            const uint32_t lo = (b[i].qs[j] & 0xFu) | (((qh >> j) & 1u) << 4);
            const uint32_t hi = (b[i].qs[j] >> 4) | (((qh >> (j + kHalf)) & 1u) << 4);
            dst[j] = static_cast<float>(lo) * d + m;
            dst[j + kHalf] = static_cast<float>(hi) * d + m;
        }
    }
}

void quantize_q5_1(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q5_1*>(dst);
    for (int64_t i = 0; i < n / QK5_1; ++i, src += QK5_1) {
        float min, max;
        min_max(src, QK5_1, &min, &max);
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = to_f16(d);
        b[i].m = to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < kHalf; ++j) {
            const int lo = truncate_level((src[j] - min) * id + 0.5f, 31);
            const int hi = truncate_level((src[j + kHalf] - min) * id + 0.5f, 31);
            b[i].qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
            qh |= static_cast<uint32_t>(lo >> 4) << j;
            qh |= static_cast<uint32_t>(hi >> 4) << (j + kHalf);
        }
        store_u32(b[i].qh, qh);
    }
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q8_0*>(src);
    for (int64_t i = 0; i < n / QK8_0; ++i, dst += QK8_0) {
        const float d = f16(b[i].d);
        for (int j = 0; j < QK8_0; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

// Weights: d = amax / 127 and the multiplier is 1 / d, rounded half away from zero (roundf).
// The activation quantizer (activations.cpp) differs in both respects, as llama.cpp's does.
void quantize_q8_0(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / QK8_0; ++i, src += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(src[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = to_f16(d);
        for (int j = 0; j < QK8_0; ++j) b[i].qs[j] = round_away(src[j] * id);
    }
}

void dequantize_q8_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q8_1*>(src);
    for (int64_t i = 0; i < n / QK8_1; ++i, dst += QK8_1) {
        const float d = f16(b[i].d);
        for (int j = 0; j < QK8_1; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

// ggml's quantize_row_q8_1_ref: as Q8_0's weight quantizer, plus s = d * Σq.
void quantize_q8_1(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / QK8_1; ++i, src += QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; ++j) amax = std::fmax(amax, std::fabs(src[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) {
            b[i].qs[j] = round_away(src[j] * id);
            sum += b[i].qs[j];
        }
        b[i].d = to_f16(d);
        b[i].s = to_f16(static_cast<float>(sum) * d);
    }
}

}  // namespace strata::quant::ref
