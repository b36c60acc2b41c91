// Helpers shared by the scalar reference kernels (internal to simd/ref).
//
// The rounding helpers reproduce what ggml computes bit for bit, because a quantizer that rounds
// a tie the other way picks a different code and the dequantized model no longer matches files
// written by llama-quantize.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "simd/fp16.h"

namespace strata::quant::ref {

// Round to nearest, ties to even, the way ggml's nearest_int does: adding 1.5 * 2^23 pushes the
// fraction out of the mantissa and the FPU's default rounding mode rounds it. Exact for
// |v| <= 2^22 - 1; larger magnitudes (and NaN) are clamped first so that the result stays
// defined: callers clamp the returned level to their range anyway.
inline int nearest_int(float v) {
    constexpr float kLimit = 4194303.0f;
    if (!(v <= kLimit)) v = v != v ? 0.0f : kLimit;  // NaN → 0, +large → limit
    if (!(v >= -kLimit)) v = -kLimit;
    const float shifted = v + 12582912.0f;
    return static_cast<int>(std::bit_cast<uint32_t>(shifted) & 0x007fffffu) - 0x00400000;
}

inline int clamp_int(int v, int lo, int hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

// Float to int truncating towards zero, saturated to [lo, hi] first so that the conversion is
// always defined (NaN gives 0). Within range this is the plain C cast ggml uses.
inline int saturate_to_int(float v, int lo, int hi) {
    if (v != v) return 0;
    if (v <= static_cast<float>(lo)) return lo;
    if (v >= static_cast<float>(hi)) return hi;
    return static_cast<int>(v);
}

inline float f16(uint16_t h) {
    return fp16_to_fp32(h);
}
inline uint16_t to_f16(float f) {
    return fp32_to_fp16(f);
}

// The fifth bits of Q5_0 / Q5_1 are one little-endian 32-bit word, bit j for element j.
inline uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store_u32(uint8_t* p, uint32_t v) {
    std::memcpy(p, &v, sizeof v);
}

// Q4_K / Q5_K: eight 6-bit scales and eight 6-bit mins packed into 12 bytes. Sub-blocks 0..3
// keep theirs in the low 6 bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 keep their
// low 4 bits in the nibbles of bytes 8..11 and their top 2 bits in the spare top bits of bytes
// 0..3 (scale) and 4..7 (min).
inline void unpack_scale_min_k4(int j, const uint8_t* packed, uint8_t* scale, uint8_t* min) {
    if (j < 4) {
        *scale = packed[j] & 63;
        *min = packed[j + 4] & 63;
    } else {
        *scale = static_cast<uint8_t>((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
        *min = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
    }
}

// Q3_K: sixteen 6-bit scales (stored + 32) in 12 bytes. Low 4 bits: nibbles of bytes 0..7
// (sub-blocks 0..7 low nibble, 8..15 high nibble); top 2 bits: byte 8 + j % 4, bit pair j / 4.
inline int unpack_scale_q3(int j, const uint8_t* packed) {
    const int low = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

// hsum_float_8's tree over eight float lanes: (0+4 + 2+6) + (1+5 + 3+7).
inline float hsum_lanes8(const float* acc) {
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// The eight float lanes llama.cpp's AVX2 kernels keep (which its AVX-512 build runs, and the
// golden logits were made with): each block's eight exact integer lane sums are converted and
// fused into their lanes, and the lanes are added at the end in hsum_float_8's tree.
struct Lanes8 {
    float acc[8] = {};

    void fma_lanes(float d, const int32_t* lanes) {
        for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, static_cast<float>(lanes[k]), acc[k]);
    }
    float total() const { return hsum_lanes8(acc); }
};

}  // namespace strata::quant::ref
