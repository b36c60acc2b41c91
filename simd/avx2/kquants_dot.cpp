// AVX2 dot products of Q2_K .. Q6_K with Q8_K. Per super-block the level·q8 products and
// their scaling by the 6- or 8-bit sub-block scales stay in int32 lanes (exact, see
// simd/ref/kquants_dot.cpp for the ranges); one float FMA per super-block applies d_w·d_a. The
// mins of Q4_K / Q5_K and the -32 offset of Q6_K go through Q8_K's group sums.
//
// Which int32 lane holds which partial sum, and how the float lanes are added up, follow
// llama.cpp's AVX2 kernels exactly: the lanes are rounded to float separately, so another
// distribution of the same integers gives results that differ in the last bits, and through a
// model's layers that is enough to flip a token (golden case deepseek2.Q4_K_M.p40).
#include <immintrin.h>

#include "simd/avx2/kernels.h"
#include "simd/avx2/util.h"
#include "simd/fp16.h"
#include "simd/quant.h"
#include "simd/ref/common.h"
#include "simd/row_tile.h"

namespace strata::quant::avx2 {
namespace {

// Σ level·q8 of 32 elements with unsigned levels (≤ 63: pair sums fit int16), times the
// sub-block scale in every int16 of `scale16`, as int32 lanes.
inline __m256i scaled_dot_u8(__m256i levels, const int8_t* q8, __m256i scale16) {
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(levels, y), scale16);
}

// Q4_K and Q5_K: four 64-element chunks, each one byte row of nibbles (low nibble: sub-block
// 2c, high nibble: 2c + 1); Q5_K adds bit 2c / 2c + 1 of qh[l] as +16. row<NA>: one weight row
// against NA activation rows (simd/row_tile.h): the weight's levels and scales are unpacked
// once and each activation row takes exactly the operations vec_dot takes for it alone, so
// every y[t * y_stride] is vec_dot's float bit for bit (vec_dot is row<1>).
template <typename Block, bool kFifthBit>
struct K4 {
    template <int NA>
    static void row(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                    int64_t y_stride);
};

template <typename Block, bool kFifthBit>
template <int NA>
void K4<Block, kFifthBit>::row(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride,
                               float* y, int64_t y_stride) {
    const auto* x = reinterpret_cast<const Block*>(w);
    const block_q8_K* q8[NA];
    for (int t = 0; t < NA; ++t) q8[t] = reinterpret_cast<const block_q8_K*>(a + t * a_stride);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc[NA];
    __m128 acc_mins[NA];  // Q4_K: 4 lanes, lane l = sub-blocks 2l and 2l + 1
    float mins[NA];       // Q5_K: one scalar
    for (int t = 0; t < NA; ++t) {
        acc[t] = _mm256_setzero_ps();
        acc_mins[t] = _mm_setzero_ps();
        mins[t] = 0.0f;
    }
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; ++j) ref::unpack_scale_min_k4(j, x[i].scales, &sc[j], &m[j]);
        __m256i scale16[8];
        for (int j = 0; j < 8; ++j) scale16[j] = _mm256_set1_epi16(static_cast<int16_t>(sc[j]));
        // Min j against the group sums 2j and 2j + 1 (int16 pairs for vpmaddwd).
        alignas(32) int16_t mins16[16];
        for (int j = 0; j < 16; ++j) mins16[j] = m[j / 2];
        const __m256i min_pairs = _mm256_load_si256(reinterpret_cast<const __m256i*>(mins16));
        const float xd = fp16_to_fp32(x[i].d), xdmin = fp16_to_fp32(x[i].dmin);
        __m256i hbits = _mm256_setzero_si256();
        if constexpr (kFifthBit)
            hbits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh));
        __m256i isum[NA];
        for (int t = 0; t < NA; ++t) isum[t] = _mm256_setzero_si256();
        for (int c = 0; c < 4; ++c) {
            const __m256i q =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, low4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            if constexpr (kFifthBit) {
                // Bit 2c (low half) and 2c + 1 (high half) of each qh byte, moved to bit 4. The
                // 16-bit shifts leak bits across bytes, which the mask with 1 removes.
                const __m256i hl = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * c), one);
                const __m256i hh = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * c + 1), one);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(hl, 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(hh, 4));
            }
            for (int t = 0; t < NA; ++t) {
                isum[t] = _mm256_add_epi32(isum[t],
                                           scaled_dot_u8(lo, q8[t][i].qs + 64 * c, scale16[2 * c]));
                isum[t] = _mm256_add_epi32(
                    isum[t], scaled_dot_u8(hi, q8[t][i].qs + 64 * c + 32, scale16[2 * c + 1]));
            }
        }
        for (int t = 0; t < NA; ++t) {
            // Lane l: Σ min j · (bsum 2j + bsum 2j + 1) over j = 2l, 2l + 1 (exact in int32).
            const __m256i mm = _mm256_madd_epi16(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8[t][i].bsums)), min_pairs);
            const __m128i lanes =
                _mm_hadd_epi32(_mm256_castsi256_si128(mm), _mm256_extracti128_si256(mm, 1));
            const float d = xd * q8[t][i].d;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum[t]), acc[t]);
            const float dmin = xdmin * q8[t][i].d;
            if constexpr (kFifthBit) {
                const __m128i s2 = _mm_hadd_epi32(lanes, lanes);
                const int32_t total = _mm_cvtsi128_si32(_mm_hadd_epi32(s2, s2));
                mins[t] += dmin * static_cast<float>(total);
            } else {
                acc_mins[t] = _mm_fmadd_ps(_mm_set1_ps(-dmin), _mm_cvtepi32_ps(lanes), acc_mins[t]);
            }
        }
    }
    for (int t = 0; t < NA; ++t) {
        if constexpr (kFifthBit) {
            y[t * y_stride] = hsum(acc[t]) - mins[t];
        } else {
            // (l0 + l2) + (l1 + l3), as the reference adds the lanes.
            __m128 m2 = _mm_add_ps(acc_mins[t], _mm_movehl_ps(acc_mins[t], acc_mins[t]));
            m2 = _mm_add_ss(m2, _mm_movehdup_ps(m2));
            y[t * y_stride] = hsum(acc[t]) + _mm_cvtss_f32(m2);
        }
    }
}

// Q6_K: per 128-element half, planes p = 0..3 of 32 elements; unsigned level u = low | high << 4
// in 0..63 stands for u - 32, so Σ(u - 32)·q8 = Σu·q8 - 32·Σq8. Each plane spans two sub-blocks
// of 16 with their own int8 scale: the low and high 128-bit halves of the int16 products. The
// offset term comes from the group sums: lane k loses 32·(scale·bsum) of sub-blocks 2k, 2k + 1.
// row<NA>: one weight row against NA activation rows, as K4's.
struct Q6K {
    template <int NA>
    static void row(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                    int64_t y_stride);
};

template <int NA>
void Q6K::row(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
              int64_t y_stride) {
    const auto* x = reinterpret_cast<const block_q6_K*>(w);
    const block_q8_K* q8[NA];
    for (int t = 0; t < NA; ++t) q8[t] = reinterpret_cast<const block_q8_K*>(a + t * a_stride);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i low2 = _mm256_set1_epi8(0x03);
    __m256 acc[NA];
    for (int t = 0; t < NA; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const __m256i scales16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
        const float xd = fp16_to_fp32(x[i].d);
        __m256i isum[NA];
        for (int t = 0; t < NA; ++t) isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const auto* ql = reinterpret_cast<const __m256i*>(x[i].ql + 64 * h);
            const __m256i ql0 = _mm256_loadu_si256(ql);
            const __m256i ql1 = _mm256_loadu_si256(ql + 1);
            const __m256i qh =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh + 32 * h));
            auto high = [&](int p) {  // bits 2p..2p+1 of qh moved to bits 4..5
                return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p), low2), 4);
            };
            const __m256i u[4] = {
                _mm256_or_si256(_mm256_and_si256(ql0, low4), high(0)),
                _mm256_or_si256(_mm256_and_si256(ql1, low4), high(1)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), high(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), high(3)),
            };
            for (int p = 0; p < 4; ++p) {
                const int sub = 8 * h + 2 * p;
                const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(x[i].scales[sub + 1]),
                                                        _mm_set1_epi16(x[i].scales[sub]));
                for (int t = 0; t < NA; ++t) {
                    const __m256i act = _mm256_loadu_si256(
                        reinterpret_cast<const __m256i*>(q8[t][i].qs + 128 * h + 32 * p));
                    const __m256i prod = _mm256_maddubs_epi16(u[p], act);  // pairs ≤ 2·63·127
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(prod, scales));
                }
            }
        }
        for (int t = 0; t < NA; ++t) {
            const __m256i bsums =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8[t][i].bsums));
            const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(bsums, scales16), 5);
            const __m256i sum = _mm256_sub_epi32(isum[t], offset);
            const float d = xd * q8[t][i].d;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc[t]);
        }
    }
    for (int t = 0; t < NA; ++t) y[t * y_stride] = hsum(acc[t]);
}

}  // namespace

// Q2_K and Q3_K: per 128-element half h, planes p = 0..3 of 32 elements take bits 2p..2p+1 of
// the same 32 bytes; a plane spans sub-blocks 8h + 2p (its low 16 bytes, the low 128-bit lane)
// and 8h + 2p + 1 (high lane), each with its own 16-bit scale. Int32 lane k of the block sum
// holds the scaled products of elements 4k..4k+3 of every plane.
//   Q2_K: levels 0..3; the minimum's share goes through Q8_K's group sums in int32 lanes
//         (lane k: min·bsum of groups 2k and 2k + 1), added to the float accumulator first with
//         -d_a·dmin_w, then the levels' sum with d_a·d_w.
//   Q3_K: levels 0..3 minus 4 where the plane's bit of hmask is clear; signed 6-bit scales.
namespace {

// Scales of the sub-blocks of half h as the two 128-bit lanes of plane p want them.
inline __m256i plane_scales(const int16_t* scales16, int h, int p) {
    const int sub = 8 * h + 2 * p;
    return _mm256_set_m128i(_mm_set1_epi16(scales16[sub + 1]), _mm_set1_epi16(scales16[sub]));
}

}  // namespace

float vec_dot_q2_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q2_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m256i low2 = _mm256_set1_epi8(0x03);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int16_t scales16[QK_K / 16], mins16[QK_K / 16];
        for (int j = 0; j < QK_K / 16; ++j) {
            scales16[j] = static_cast<int16_t>(x[i].scales[j] & 0xF);
            mins16[j] = static_cast<int16_t>(x[i].scales[j] >> 4);
        }
        const __m256i mins =
            _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(mins16)),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)));
        const float dmin = -y[i].d * fp16_to_fp32(x[i].dmin);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(mins), acc);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i q =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * h));
            for (int p = 0; p < 4; ++p) {
                const __m256i levels = _mm256_and_si256(_mm256_srli_epi16(q, 2 * p), low2);
                const __m256i q8 = _mm256_loadu_si256(
                    reinterpret_cast<const __m256i*>(y[i].qs + 128 * h + 32 * p));
                const __m256i prod = _mm256_maddubs_epi16(levels, q8);
                isum =
                    _mm256_add_epi32(isum, _mm256_madd_epi16(prod, plane_scales(scales16, h, p)));
            }
        }
        const float d = y[i].d * fp16_to_fp32(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
    }
    return hsum(acc);
}

float vec_dot_q3_K(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const block_q3_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    const __m256i low2 = _mm256_set1_epi8(0x03);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int16_t scales16[QK_K / 16];
        for (int j = 0; j < QK_K / 16; ++j)
            scales16[j] = static_cast<int16_t>(ref::unpack_scale_q3(j, x[i].scales));
        const __m256i hmask = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].hmask));
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i q =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * h));
            for (int p = 0; p < 4; ++p) {
                const int bit = 4 * h + p;
                const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * p), low2);
                // 4 where the high bit is clear (the level is low - 4), else 0.
                const __m256i clear =
                    _mm256_andnot_si256(_mm256_and_si256(_mm256_srli_epi16(hmask, bit), one), one);
                const __m256i minus = _mm256_slli_epi16(clear, 2);
                const __m256i q8 = _mm256_loadu_si256(
                    reinterpret_cast<const __m256i*>(y[i].qs + 128 * h + 32 * p));
                // Σ low·q8 - Σ minus·q8 per pair, each term below 2·4·128: exact in int16.
                const __m256i prod = _mm256_sub_epi16(_mm256_maddubs_epi16(low, q8),
                                                      _mm256_maddubs_epi16(minus, q8));
                isum =
                    _mm256_add_epi32(isum, _mm256_madd_epi16(prod, plane_scales(scales16, h, p)));
            }
        }
        const float d = y[i].d * fp16_to_fp32(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
    }
    return hsum(acc);
}

float vec_dot_q4_K(int64_t n, const void* w, const void* a) {
    float out;
    K4<block_q4_K, false>::row<1>(n / QK_K, static_cast<const uint8_t*>(w),
                                  static_cast<const uint8_t*>(a), 0, &out, 0);
    return out;
}

float vec_dot_q5_K(int64_t n, const void* w, const void* a) {
    float out;
    K4<block_q5_K, true>::row<1>(n / QK_K, static_cast<const uint8_t*>(w),
                                 static_cast<const uint8_t*>(a), 0, &out, 0);
    return out;
}

float vec_dot_q6_K(int64_t n, const void* w, const void* a) {
    float out;
    Q6K::row<1>(n / QK_K, static_cast<const uint8_t*>(w), static_cast<const uint8_t*>(a), 0, &out,
                0);
    return out;
}

// Groups of up to four activation rows: the accumulators of more stay out of the 16 registers.
template <typename Kernel>
void run_tile(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
              size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    simd::run_row_tile<Kernel, 4>(n / QK_K, static_cast<const uint8_t*>(w), w_stride, n_w,
                                  static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q4_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<K4<block_q4_K, false>>(n, w, w_stride, n_w, a, a_stride, n_a, y, y_stride);
}

void tile_q5_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<K4<block_q5_K, true>>(n, w, w_stride, n_w, a, a_stride, n_a, y, y_stride);
}

void tile_q6_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<Q6K>(n, w, w_stride, n_w, a, a_stride, n_a, y, y_stride);
}

}  // namespace strata::quant::avx2
