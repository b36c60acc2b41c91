// Scalar twins of llama.cpp's AVX-512 float reductions and exp (see float_order.h).
#include "simd/float_order.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "simd/fp16.h"

// The dot products are compiled three times and chosen when the program loads: the lane loops
// below are independent per lane, so the FMA and AVX-512 clones vectorise them without changing
// a single rounding. The default clone calls the C library's fma (exact, slower).
#define STRATA_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))

// The FMA clones must not fuse the reference's separate multiply and add.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

namespace strata::simd {

float reduce_16(const float* v) {
    float h[8];
    for (int i = 0; i < 8; ++i) h[i] = v[i] + v[i + 8];
    float q[4];
    for (int i = 0; i < 4; ++i) q[i] = h[i] + h[i + 4];
    return (q[0] + q[2]) + (q[1] + q[3]);
}

STRATA_CLONES
float dot_f32_gemm(const float* x, const float* y, int64_t n) {
    float acc[16] = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int l = 0; l < 16; ++l) acc[l] = std::fma(x[i + l], y[i + l], acc[l]);
    }
    for (int l = 0; i + l < n; ++l) acc[l] = std::fma(x[i + l], y[i + l], acc[l]);
    return reduce_16(acc);
}

STRATA_CLONES
void dot_f32_gemm_4x4(const float* const* x, const float* const* y, int64_t n, float* out) {
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    const float *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3];
    float acc[16][16] = {};  // [r · 4 + c][lane]
    const auto step = [&](int64_t i, int l) {
        const float a[4] = {x0[i + l], x1[i + l], x2[i + l], x3[i + l]};
        const float b[4] = {y0[i + l], y1[i + l], y2[i + l], y3[i + l]};
        for (int r = 0; r < 4; ++r) {
            for (int c = 0; c < 4; ++c) acc[r * 4 + c][l] = std::fma(a[r], b[c], acc[r * 4 + c][l]);
        }
    };
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int l = 0; l < 16; ++l) step(i, l);
    }
    for (int l = 0; i + l < n; ++l) step(i, l);
    for (int k = 0; k < 16; ++k) out[k] = reduce_16(acc[k]);
}

int64_t fused_tail_start(int64_t start, int64_t end) {
    const int64_t left = end - start;
    return start + (left & ~int64_t{15}) + ((left & 15) >= 8 ? 8 : 0);
}

float add_vec_remainder(const float* x, const float* y, int64_t whole, int64_t n, int64_t n_total,
                        float sum) {
    // The remainder is a scalar loop in the reference, added one at a time, which its compiler
    // vectorised: products of 16 at a time, then 8, are rounded before they are added; the last
    // (up to 7) are fused multiply-adds. Masked terms (zeros) move that boundary, not the sum.
    const int64_t tail = fused_tail_start(whole, n_total);
    for (int64_t k = whole; k < n; ++k) {
        if (k < tail) {
            const float p = x[k] * y[k];
            sum += p;
        } else {
            sum = std::fma(x[k], y[k], sum);
        }
    }
    return sum;
}

STRATA_CLONES
float dot_f32_vec_prefix(const float* x, const float* y, int64_t n, int64_t n_total) {
    const int64_t whole = n_total & ~int64_t{63};
    const int64_t lanes = n < whole ? n : whole;
    float acc[4][16] = {};
    const auto fma_lanes = [&](int64_t k, int a, int count) {
        for (int l = 0; l < count; ++l) acc[a][l] = std::fma(x[k + l], y[k + l], acc[a][l]);
    };
    int64_t i = 0;
    for (; i + 64 <= lanes; i += 64) {
        for (int a = 0; a < 4; ++a) fma_lanes(i + 16 * a, a, 16);
    }
    // A last step that the zeros of masked positions complete: element k in lane (k - i) % 16
    // of accumulator (k - i) / 16, whole groups of 16 first (vector code, not scalar).
    int a = 0;
    for (; i + 16 <= lanes; i += 16, ++a) fma_lanes(i, a, 16);
    if (i < lanes) fma_lanes(i, a, static_cast<int>(lanes - i));
    for (int l = 0; l < 16; ++l) {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for (int l = 0; l < 16; ++l) acc[0][l] += acc[1][l];
    return add_vec_remainder(x, y, whole, n, n_total, reduce_16(acc[0]));
}

STRATA_CLONES
void dot_f32_vec_prefix_4x4(const float* const* x, const float* const* y, int64_t n,
                            int64_t n_total, float* out) {
    const int64_t whole = n_total & ~int64_t{63};
    const int64_t lanes = n < whole ? n : whole;
    const int64_t steps = lanes / 64 * 64;  // whole steps of 64; the partial one follows
    // One accumulator of each product at a time: accumulator a takes elements 64s + 16a + l,
    // so its pass touches a quarter of every step, and sixteen of them fit in registers.
    float part[4][16][16];  // [a][r · 4 + c][lane]
    for (int a = 0; a < 4; ++a) {
        float acc[16][16] = {};
        const auto step = [&](int64_t k, int count) {
            for (int l = 0; l < count; ++l) {
                const float xs[4] = {x[0][k + l], x[1][k + l], x[2][k + l], x[3][k + l]};
                const float ys[4] = {y[0][k + l], y[1][k + l], y[2][k + l], y[3][k + l]};
                for (int r = 0; r < 4; ++r) {
                    for (int c = 0; c < 4; ++c)
                        acc[r * 4 + c][l] = std::fma(xs[r], ys[c], acc[r * 4 + c][l]);
                }
            }
        };
        for (int64_t i = 16 * a; i < steps; i += 64) step(i, 16);
        const int64_t k = steps + 16 * a;  // this accumulator's share of the partial step
        if (k < lanes) step(k, static_cast<int>(std::min<int64_t>(16, lanes - k)));
        for (int p = 0; p < 16; ++p)
            for (int l = 0; l < 16; ++l) part[a][p][l] = acc[p][l];
    }
    for (int p = 0; p < 16; ++p) {
        float v[16];
        for (int l = 0; l < 16; ++l)
            v[l] = (part[0][p][l] + part[2][p][l]) + (part[1][p][l] + part[3][p][l]);
        out[p] = reduce_16(v);
    }
    // add_vec_remainder of the sixteen products side by side, product p in lane p: each lane
    // takes the same steps in the same order as the scalar loop, so the bits are its bits.
    const int64_t tail = fused_tail_start(whole, n_total);
    for (int64_t k = whole; k < n; ++k) {
        float xs[16], ys[16];
        for (int p = 0; p < 16; ++p) {
            xs[p] = x[p / 4][k];
            ys[p] = y[p % 4][k];
        }
        if (k < tail) {
            for (int p = 0; p < 16; ++p) out[p] += xs[p] * ys[p];
        } else {
            for (int p = 0; p < 16; ++p) out[p] = std::fma(xs[p], ys[p], out[p]);
        }
    }
}

float dot_f32_vec(const float* x, const float* y, int64_t n) {
    return dot_f32_vec_prefix(x, y, n, n);
}

STRATA_CLONES
float dot_f16_vec(const uint16_t* x, const uint16_t* y, int64_t n) {
    float acc[4][16] = {};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        for (int r = 0; r < 4; ++r) {
            for (int l = 0; l < 16; ++l) {
                const int64_t k = i + 16 * r + l;
                acc[r][l] = std::fma(fp16_to_fp32(x[k]), fp16_to_fp32(y[k]), acc[r][l]);
            }
        }
    }
    for (int l = 0; l < 16; ++l) {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for (int l = 0; l < 16; ++l) acc[0][l] += acc[1][l];
    double sum = reduce_16(acc[0]);
    for (; i < n; ++i) sum += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
    return static_cast<float>(sum);
}

STRATA_CLONES
float dot_f16_gemm(const uint16_t* x, const uint16_t* y, int64_t n) {
    float acc[16] = {};
    for (int64_t i = 0; i + 16 <= n; i += 16) {
        for (int l = 0; l < 16; ++l)
            acc[l] = std::fma(fp16_to_fp32(x[i + l]), fp16_to_fp32(y[i + l]), acc[l]);
    }
    return reduce_16(acc);
}

namespace {

// One vdpbf16ps: lane l gains the products of elements 2l + 1 and 2l of the 32 at x, y.
inline void dpbf16(float* acc, const uint16_t* x, const uint16_t* y) {
    for (int l = 0; l < 16; ++l) {
        acc[l] += bf16_to_fp32(x[2 * l + 1]) * bf16_to_fp32(y[2 * l + 1]);
        acc[l] += bf16_to_fp32(x[2 * l]) * bf16_to_fp32(y[2 * l]);
    }
}

}  // namespace

STRATA_CLONES
float dot_bf16_vec(const uint16_t* x, const uint16_t* y, int64_t n) {
    float c1[16] = {}, c2[16] = {};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        dpbf16(c1, x + i, y + i);
        dpbf16(c2, x + i + 32, y + i + 32);
    }
    double sum = reduce_16(c1);
    sum += reduce_16(c2);
    for (; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
    return static_cast<float>(sum);
}

STRATA_CLONES
float dot_bf16_gemm(const uint16_t* x, const uint16_t* y, int64_t n) {
    float acc[16] = {};
    for (int64_t i = 0; i + 32 <= n; i += 32) dpbf16(acc, x + i, y + i);
    return reduce_16(acc);
}

namespace {

// ggml_v_expf's steps for one lane. x = n·ln2 + b with n an integer (rounded through the 1.5·2^23
// shift) and ln2 split in two parts, then e^b by a degree-5 polynomial and e^x = e^b · 2^n as
// _mm512_scalef_ps computes it (one rounding): j · 2^n is exact while it is a normal float, and
// where it is not (n < -126, n > 127) it goes through two powers of two of which the first
// product is exact. Bit operations only, so the loops below vectorise.
__attribute__((always_inline)) inline float exp_lane(float x) {
    const float shift = 0x1.8p23f;
    const float z = std::fma(x, 0x1.715476p+0f, shift);
    const float n = z - shift;
    const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                      std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                             u, std::fma(0x1.ffffecp-1f, b, 1.0f));
    const float big = std::fabs(n) > 192.0f ? 1.0f : 0.0f;  // also NaN-free for ±inf
    const float nc = big != 0.0f ? 0.0f : n;                // in range for the bits below
    const auto ni = static_cast<int32_t>(nc);
    const bool lo = ni<-126, hi = ni> 127;
    const int32_t n1 = lo ? ni + 100 : (hi ? ni - 100 : ni);
    const float s1 = std::bit_cast<float>(static_cast<uint32_t>(n1 + 127) << 23);
    const float s2 = lo ? 0x1p-100f : (hi ? 0x1p100f : 1.0f);
    const float r = (j * s1) * s2;
    return big != 0.0f ? (n <= 0.0f ? 0.0f : INFINITY) : r;
}

}  // namespace

float exp_vec(float x) {
    return exp_lane(x);
}

STRATA_CLONES
void exp_vec_n(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = exp_lane(x[i]);
}

}  // namespace strata::simd
