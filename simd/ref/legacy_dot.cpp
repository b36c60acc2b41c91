// Dot products of the legacy formats with their 8-bit partners, block by block: exact integer
// sums of quant products, scaled by d_w·d_a. Formats with a minimum (Q4_1, Q5_1) add m·s, where
// the partner's s = d_a·Σq_a carries the activation sum, so the offset costs one multiply.
#include <cmath>

#include "simd/quant.h"
#include "simd/ref/common.h"
#include "simd/ref/ref.h"

namespace strata::quant::ref {
namespace {

constexpr int kHalf = 16;

// The 32 weight levels of a nibble block plus optional fifth bits, as signed integers.
template <typename Block>
void unpack_nibbles(const Block& b, int offset, int* q) {
    for (int j = 0; j < kHalf; ++j) {
        q[j] = (b.qs[j] & 0xF) - offset;
        q[j + kHalf] = (b.qs[j] >> 4) - offset;
    }
}

template <typename Block>
void unpack_five_bits(const Block& b, int offset, int* q) {
    const uint32_t qh = load_u32(b.qh);
    for (int j = 0; j < kHalf; ++j) {
        q[j] = static_cast<int>((b.qs[j] & 0xFu) | (((qh >> j) & 1u) << 4)) - offset;
        q[j + kHalf] =
            static_cast<int>((b.qs[j] >> 4) | (((qh >> (j + kHalf)) & 1u) << 4)) - offset;
    }
}

// The sums in llama.cpp's AVX2 order (simd/avx2/legacy_dot.cpp), which its AVX-512 build runs
// and the golden logits were made with: eight float lanes, lane k taking each block's exact
// integer sum of elements 4k .. 4k + 3 times d_w·d_a in a fused multiply-add, the lanes added at
// the end in hsum_float_8's tree. ggml's own scalar loop (one running float sum) rounds
// differently, and deepseek2's routing turns such last bits into other experts. Here: one block's
// lanes, lane k = Σ q·a over elements 4k .. 4k + 3, times d.
void add_block(Lanes8& lanes, float d, const int* q, const int8_t* a) {
    int32_t sums[8];
    for (int k = 0; k < 8; ++k) {
        sums[k] = 0;
        for (int j = 4 * k; j < 4 * k + 4; ++j) sums[k] += q[j] * a[j];
    }
    lanes.fma_lanes(d, sums);
}

// Σ_blocks (d_w·d_a)·Σ level·q8 with Q8_0 partners; `levels(block, q)` writes the 32 signed
// levels.
template <typename Block, typename Levels>
float dot_with_q8_0(int64_t n, const void* w, const void* a, Levels levels) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    Lanes8 lanes;
    int q[32];
    for (int64_t i = 0; i < n / 32; ++i) {
        levels(x[i], q);
        add_block(lanes, f16(x[i].d) * f16(y[i].d), q, y[i].qs);
    }
    return lanes.total();
}

// The same with Q8_1 partners and a minimum: m_w·s_a summed apart, one fused multiply-add per
// block, added after the lanes.
template <typename Block, typename Levels>
float dot_with_q8_1(int64_t n, const void* w, const void* a, Levels levels) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const block_q8_1*>(a);
    Lanes8 lanes;
    float mins = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / 32; ++i) {
        mins = std::fma(f16(x[i].m), f16(y[i].s), mins);
        levels(x[i], q);
        add_block(lanes, f16(x[i].d) * f16(y[i].d), q, y[i].qs);
    }
    return lanes.total() + mins;
}

}  // namespace

float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q4_0>(n, w, a,
                                     [](const block_q4_0& b, int* q) { unpack_nibbles(b, 8, q); });
}

float vec_dot_q4_1(int64_t n, const void* w, const void* a) {
    return dot_with_q8_1<block_q4_1>(n, w, a,
                                     [](const block_q4_1& b, int* q) { unpack_nibbles(b, 0, q); });
}

float vec_dot_q5_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q5_0>(
        n, w, a, [](const block_q5_0& b, int* q) { unpack_five_bits(b, 16, q); });
}

float vec_dot_q5_1(int64_t n, const void* w, const void* a) {
    return dot_with_q8_1<block_q5_1>(
        n, w, a, [](const block_q5_1& b, int* q) { unpack_five_bits(b, 0, q); });
}

float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q8_0>(n, w, a, [](const block_q8_0& b, int* q) {
        for (int j = 0; j < 32; ++j) q[j] = b.qs[j];
    });
}

// Q8_1 is an activation format; ggml has no kernel for it as a weight. This one exists so that
// every supported type has a dot product, and ignores `s` (there is no minimum to apply).
float vec_dot_q8_1(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q8_1*>(w);
    const auto* y = static_cast<const block_q8_1*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        int isum = 0;
        for (int j = 0; j < QK8_1; ++j) isum += x[i].qs[j] * y[i].qs[j];
        sum += (f16(x[i].d) * f16(y[i].d)) * static_cast<float>(isum);
    }
    return sum;
}

}  // namespace strata::quant::ref
