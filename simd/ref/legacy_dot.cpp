// Dot products of the legacy formats with their 8-bit partners, block by block: an exact integer
// sum of quant products, scaled by d_w·d_a. Formats with a minimum (Q4_1, Q5_1) add m·s, where
// the partner's s = d_a·Σq_a carries the activation sum, so the offset costs one multiply.
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

int dot32(const int* q, const int8_t* a) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += q[j] * a[j];
    return sum;
}

}  // namespace

float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float sum = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / QK4_0; ++i) {
        unpack_nibbles(x[i], 8, q);
        sum += (f16(x[i].d) * f16(y[i].d)) * static_cast<float>(dot32(q, y[i].qs));
    }
    return sum;
}

float vec_dot_q4_1(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_1*>(w);
    const auto* y = static_cast<const block_q8_1*>(a);
    float sum = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / QK4_1; ++i) {
        unpack_nibbles(x[i], 0, q);
        sum += (f16(x[i].d) * f16(y[i].d)) * static_cast<float>(dot32(q, y[i].qs)) +
               f16(x[i].m) * f16(y[i].s);
    }
    return sum;
}

float vec_dot_q5_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float sum = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / QK5_0; ++i) {
        unpack_five_bits(x[i], 16, q);
        sum += (f16(x[i].d) * f16(y[i].d)) * static_cast<float>(dot32(q, y[i].qs));
    }
    return sum;
}

float vec_dot_q5_1(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_1*>(w);
    const auto* y = static_cast<const block_q8_1*>(a);
    float sum = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / QK5_1; ++i) {
        unpack_five_bits(x[i], 0, q);
        sum += (f16(x[i].d) * f16(y[i].d)) * static_cast<float>(dot32(q, y[i].qs)) +
               f16(x[i].m) * f16(y[i].s);
    }
    return sum;
}

float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q8_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        int isum = 0;
        for (int j = 0; j < QK8_0; ++j) isum += x[i].qs[j] * y[i].qs[j];
        sum += (f16(x[i].d) * f16(y[i].d)) * static_cast<float>(isum);
    }
    return sum;
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
