// Integer levels of one K-quant super-block, in element order (internal to simd/ref).
// Dequantization and the dot products both start from these, so the bit layouts live here once.
//
// Bit-plane layouts: Q2_K / Q3_K pack element e = 128·h + 32·p + l (h half, p plane 0..3,
// l 0..31) into bits 2p..2p+1 of qs[32·h + l]; Q3_K's high bit of element e is bit e / 32 of
// hmask[e % 32], and a clear bit means "4 lower". Q4_K / Q5_K pack element e = 64·c + 32·s + l
// into the low (s = 0) or high (s = 1) nibble of qs[32·c + l]; Q5_K's fifth bit is bit 2c + s
// of qh[l]. Q6_K splits each 128-element half into four 32-element planes: the low nibble of
// element 128h + 32p + l is in ql[64h + l + 32·(p & 1)] (planes 2, 3 in the high nibble), its
// top two bits are bits 2p..2p+1 of qh[32h + l].
#pragma once

#include <cstdint>

#include "simd/quant.h"

namespace strata::quant::ref {

// Levels 0..3.
inline void levels_q2_K(const block_q2_K& b, int8_t* L) {
    for (int e = 0; e < QK_K; ++e) {
        const int h = e / 128, p = (e / 32) % 4, l = e % 32;
        L[e] = static_cast<int8_t>((b.qs[32 * h + l] >> (2 * p)) & 3);
    }
}

// Levels -4..3.
inline void levels_q3_K(const block_q3_K& b, int8_t* L) {
    for (int e = 0; e < QK_K; ++e) {
        const int h = e / 128, p = (e / 32) % 4, l = e % 32;
        const int low = (b.qs[32 * h + l] >> (2 * p)) & 3;
        const bool high = (b.hmask[l] >> (e / 32)) & 1;
        L[e] = static_cast<int8_t>(low - (high ? 0 : 4));
    }
}

// Levels 0..15.
inline void levels_q4_K(const block_q4_K& b, int8_t* L) {
    for (int e = 0; e < QK_K; ++e) {
        const int c = e / 64, s = (e / 32) % 2, l = e % 32;
        L[e] = static_cast<int8_t>((b.qs[32 * c + l] >> (4 * s)) & 0xF);
    }
}

// Levels 0..31.
inline void levels_q5_K(const block_q5_K& b, int8_t* L) {
    for (int e = 0; e < QK_K; ++e) {
        const int c = e / 64, s = (e / 32) % 2, l = e % 32;
        const int low = (b.qs[32 * c + l] >> (4 * s)) & 0xF;
        const int high = (b.qh[l] >> (2 * c + s)) & 1;
        L[e] = static_cast<int8_t>(low | (high << 4));
    }
}

// Levels -32..31.
inline void levels_q6_K(const block_q6_K& b, int8_t* L) {
    for (int e = 0; e < QK_K; ++e) {
        const int h = e / 128, p = (e / 32) % 4, l = e % 32;
        const uint8_t low_byte = b.ql[64 * h + l + 32 * (p & 1)];
        const int low = p < 2 ? (low_byte & 0xF) : (low_byte >> 4);
        const int high = (b.qh[32 * h + l] >> (2 * p)) & 3;
        L[e] = static_cast<int8_t>((low | (high << 4)) - 32);
    }
}

}  // namespace strata::quant::ref
