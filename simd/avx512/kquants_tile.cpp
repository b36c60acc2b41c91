// AVX-512 VNNI tile kernels of the K-quants (Q2_K .. Q6_K) with Q8_K activations.
//
// Per super-block a weight row is unpacked once into four zmm of unsigned levels in element
// order (64 elements each, matching one 64-byte load of Q8_K quants) plus its sub-block scales
// as int16 lanes; every activation row of the tile then costs four loads, four vpmaddubsw
// (level·q8 pairs, exact in int16: at most 2·63·127) and four vpdpwssd (pairs × scale into int32
// lanes, exact). The block's int32 lanes are converted to float and scaled by d_w·d_a with one
// FMA into a per-row accumulator; the mins (Q4_K / Q5_K) go through Q8_K's group sums in a
// second accumulator, Q6_K's -32 offset through the same group sums in int32.
//
// Integer parts equal the reference's; the float sum is ordered differently (16 lanes per block,
// added at the end), so results differ from llama.cpp's in the last bits. That is why these
// register at the avx512 level only: STRATA_ISA=avx2 keeps llama.cpp's exact order.
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include <array>
#include <cstring>
#include <type_traits>

#include "simd/avx512/kernels.h"
#include "simd/avx512/x16.h"
#include "simd/quant.h"

namespace strata::quant::avx512 {
namespace {

// vpermw indices: for 64 levels of chunk c of Q4_K / Q5_K (sub-blocks 2c and 2c + 1, 32
// elements each), int16 lane j takes scale 2c + j / 16; for the 64 levels of chunk k of Q6_K
// (sub-blocks of 16), scale 4k + j / 8. kMinIdx spreads Q4_K's eight mins over the sixteen Q8_K
// group sums (min j for groups 2j and 2j + 1); the mins sit in int16 lanes 8..15.
template <int kPerScale, int kScalesPerChunk, int kOffset>
constexpr std::array<std::array<int16_t, 32>, 4> make_scale_index() {
    std::array<std::array<int16_t, 32>, 4> idx{};
    for (int c = 0; c < 4; ++c)
        for (int j = 0; j < 32; ++j)
            idx[c][j] = static_cast<int16_t>(kOffset + kScalesPerChunk * c + j / kPerScale);
    return idx;
}
alignas(64) constexpr auto kK4ScaleIdx = make_scale_index<16, 2, 0>();
alignas(64) constexpr auto kQ6ScaleIdx = make_scale_index<8, 4, 0>();
alignas(32) constexpr std::array<int16_t, 16> kMinIdx = {8,  8,  9,  9,  10, 10, 11, 11,
                                                         12, 12, 13, 13, 14, 14, 15, 15};

// The 16 int32 lanes of a chunk product folded to llama.cpp's AVX2 8: lane l of a 64-element
// chunk covers elements 4l..4l+3 of its first 32 and lane l + 8 the same of its second 32, which
// AVX2 adds in one lane. Exact, so the block sums equal the AVX2 kernels' lane for lane, and the
// float steps after it are theirs too.
inline __m256i fold_lanes(__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

inline __m512i load_idx(const std::array<int16_t, 32>& idx) {
    return _mm512_load_si512(idx.data());
}

// Q4_K / Q5_K scales and mins: the 12 packed bytes rearranged (as ggml's kmask trick) to bytes
// 0..7 = scales, 8..15 = mins, then widened to int16. Returns the scale vectors of the four
// chunks and, in *mins, the mins spread over the sixteen group sums.
inline void unpack_k4_scales(const uint8_t* packed, __m512i sc[4], __m256i* mins) {
    constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    uint32_t u[4];
    std::memcpy(u, packed, 12);
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t mins_low = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = mins_low;
    u[0] &= kmask1;
    const __m256i s16 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u)));
    const __m512i s16z = _mm512_castsi256_si512(s16);  // indices below 16 only: upper unused
    for (int c = 0; c < 4; ++c) sc[c] = _mm512_permutexvar_epi16(load_idx(kK4ScaleIdx[c]), s16z);
    *mins = _mm256_permutexvar_epi16(
        _mm256_load_si256(reinterpret_cast<const __m256i*>(kMinIdx.data())), s16);
}

// Q4_K / Q5_K: chunk c of 32 bytes holds elements 64c..64c+31 in its low nibbles and
// 64c+32..64c+63 in its high nibbles; Q5_K's fifth bits are bits 2c / 2c + 1 of qh[l].
template <typename Block, bool kFifthBit>
struct K4 {
    template <int NA>
    static void row(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                    int64_t y_stride) {
        const auto* x = reinterpret_cast<const Block*>(w);
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        const __m512i one = _mm512_set1_epi8(1);
        __m256 acc[NA];
        __m128 acc_mins[NA];  // Q4_K: lane l = sub-blocks 2l and 2l + 1, as the AVX2 kernel
        float mins[NA];       // Q5_K: one scalar, as the AVX2 kernel
        for (int t = 0; t < NA; ++t) {
            acc[t] = _mm256_setzero_ps();
            acc_mins[t] = _mm_setzero_ps();
            mins[t] = 0.0f;
        }
        for (int64_t i = 0; i < nb; ++i) {
            prefetch_ahead<sizeof(Block)>(reinterpret_cast<const uint8_t*>(x + i));
            __m512i q[4];
            for (int h = 0; h < 2; ++h) {
                const __m512i bytes = _mm512_loadu_si512(x[i].qs + 64 * h);
                const __m512i lo = _mm512_and_si512(bytes, low4);
                const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low4);
                q[2 * h] = _mm512_shuffle_i64x2(lo, hi, 0x44);      // chunk 2h: lo | hi
                q[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);  // chunk 2h + 1
            }
            if constexpr (kFifthBit) {
                // Low half: qh, high half: qh >> 1, so that one shift by 2c serves both.
                const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh));
                const __m512i qh2 =
                    _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 1), 1);
                for (int c = 0; c < 4; ++c) {
                    const __m512i bit = _mm512_and_si512(_mm512_srli_epi16(qh2, 2 * c), one);
                    q[c] = _mm512_or_si512(q[c], _mm512_slli_epi16(bit, 4));
                }
            }
            __m512i sc[4];
            __m256i mins16;
            unpack_k4_scales(x[i].scales, sc, &mins16);
            const float d = half(x[i].d), dmin = half(x[i].dmin);
            for (int t = 0; t < NA; ++t) {
                const auto* yb = reinterpret_cast<const block_q8_K*>(a + t * a_stride) + i;
                __m512i isum = _mm512_setzero_si512();
                for (int c = 0; c < 4; ++c) {
                    const __m512i q8 = _mm512_loadu_si512(yb->qs + 64 * c);
                    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q[c], q8), sc[c]);
                }
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * yb->d),
                                         _mm256_cvtepi32_ps(fold_lanes(isum)), acc[t]);
                const __m256i bsums =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb->bsums));
                const __m256i msum = _mm256_madd_epi16(mins16, bsums);  // lane j: min j
                const float dm = dmin * yb->d;
                if constexpr (kFifthBit) {
                    mins[t] += dm * static_cast<float>(hsum_epi32(msum));
                } else {
                    const __m128i lanes = _mm_hadd_epi32(_mm256_castsi256_si128(msum),
                                                         _mm256_extracti128_si256(msum, 1));
                    acc_mins[t] =
                        _mm_fmadd_ps(_mm_set1_ps(-dm), _mm_cvtepi32_ps(lanes), acc_mins[t]);
                }
            }
        }
        for (int t = 0; t < NA; ++t) {
            if constexpr (kFifthBit) {
                y[t * y_stride] = hsum256(acc[t]) - mins[t];
            } else {
                // (l0 + l2) + (l1 + l3), as the AVX2 kernel adds the lanes.
                __m128 m2 = _mm_add_ps(acc_mins[t], _mm_movehl_ps(acc_mins[t], acc_mins[t]));
                m2 = _mm_add_ss(m2, _mm_movehdup_ps(m2));
                y[t * y_stride] = hsum256(acc[t]) + _mm_cvtss_f32(m2);
            }
        }
    }
};

// Q6_K: per 128-element half h, ql[64h..64h+63] and qh[32h..32h+31]. Levels u = low | high << 4
// in 0..63 stand for u - 32: Σ(u - 32)·q8·s = Σu·q8·s - 32·Σ s·bsum (the groups of 16 are the
// sub-blocks). Chunk 2h holds elements 128h + 0..63 (low nibbles of ql, qh bits 0..3), chunk
// 2h + 1 elements 128h + 64..127 (high nibbles, qh bits 4..7).
struct Q6K {
    template <int NA>
    static void row(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                    int64_t y_stride) {
        const auto* x = reinterpret_cast<const block_q6_K*>(w);
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        const __m512i low2 = _mm512_set1_epi8(0x03);
        __m256 acc[NA];
        for (int t = 0; t < NA; ++t) acc[t] = _mm256_setzero_ps();
        for (int64_t i = 0; i < nb; ++i) {
            prefetch_ahead<sizeof(block_q6_K)>(reinterpret_cast<const uint8_t*>(x + i));
            __m512i u[4];
            for (int h = 0; h < 2; ++h) {
                const __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * h);
                const __m256i qh =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh + 32 * h));
                // Low half: qh (bits 0..1, 4..5), high half: qh >> 2 (bits 2..3, 6..7).
                const __m512i qh2 =
                    _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
                const __m512i h01 = _mm512_slli_epi16(_mm512_and_si512(qh2, low2), 4);
                const __m512i h23 =
                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh2, 4), low2), 4);
                u[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, low4), h01);
                u[2 * h + 1] =
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), h23);
            }
            const __m256i s16 = _mm256_cvtepi8_epi16(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
            const __m512i s16z = _mm512_castsi256_si512(s16);
            __m512i sc[4];
            for (int c = 0; c < 4; ++c)
                sc[c] = _mm512_permutexvar_epi16(load_idx(kQ6ScaleIdx[c]), s16z);
            const float d = half(x[i].d);
            for (int t = 0; t < NA; ++t) {
                const auto* yb = reinterpret_cast<const block_q8_K*>(a + t * a_stride) + i;
                const __m256i bsums =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb->bsums));
                const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(bsums, s16), 5);
                __m512i isum =
                    _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), offset));
                for (int c = 0; c < 4; ++c) {
                    const __m512i q8 = _mm512_loadu_si512(yb->qs + 64 * c);
                    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(u[c], q8), sc[c]);
                }
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * yb->d),
                                         _mm256_cvtepi32_ps(fold_lanes(isum)), acc[t]);
            }
        }
        for (int t = 0; t < NA; ++t) y[t * y_stride] = hsum256(acc[t]);
    }
};

// Q2_K and Q3_K: per 128-element half h, 32 bytes of qs hold four planes of 2 bits; plane p
// is elements 128h + 32p .. +31, so chunk k (elements 64k .. 64k + 63) is planes 2(k % 2) and
// 2(k % 2) + 1 of half k / 2. Sub-blocks of 16, like Q6_K's. Q2_K levels are 0..3 with a min
// per sub-block (4-bit scale and min in scales[j]); Q3_K levels are u - 4 with u = low + 4·hbit
// in 0..7 (hbit: bit 4h + p of hmask[l]), so the offset is -4·Σ scale·bsum, and its scales are
// signed 6-bit.
template <bool kQ3>
struct K2or3 {
    using Block = std::conditional_t<kQ3, block_q3_K, block_q2_K>;

    template <int NA>
    static void row(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                    int64_t y_stride) {
        const auto* x = reinterpret_cast<const Block*>(w);
        const __m512i low2 = _mm512_set1_epi8(0x03);
        const __m512i one = _mm512_set1_epi8(1);
        __m256 acc[NA];
        for (int t = 0; t < NA; ++t) acc[t] = _mm256_setzero_ps();
        for (int64_t i = 0; i < nb; ++i) {
            __m512i u[4];
            for (int h = 0; h < 2; ++h) {
                const __m256i q =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * h));
                // Low half: q, high half: q >> 2, so that one shift by 4(k % 2) serves both.
                const __m512i q2 =
                    _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 2), 1);
                u[2 * h] = _mm512_and_si512(q2, low2);
                u[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(q2, 4), low2);
            }
            __m256i s16, mins16 = _mm256_setzero_si256();
            if constexpr (kQ3) {
                const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].hmask));
                const __m512i hm2 =
                    _mm512_inserti64x4(_mm512_castsi256_si512(hm), _mm256_srli_epi16(hm, 1), 1);
                for (int k = 0; k < 4; ++k) {
                    const int bit = 4 * (k / 2) + 2 * (k % 2);  // plane p0 of chunk k
                    const __m512i hb = _mm512_and_si512(_mm512_srli_epi16(hm2, bit), one);
                    u[k] = _mm512_or_si512(u[k], _mm512_slli_epi16(hb, 2));
                }
                s16 = _mm256_cvtepi8_epi16(q3_scales(x[i].scales));
            } else {
                const __m128i packed =
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales));
                const __m128i low4 = _mm_set1_epi8(0x0F);
                s16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, low4));
                mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
            }
            const __m512i s16z = _mm512_castsi256_si512(s16);
            __m512i sc[4];
            for (int c = 0; c < 4; ++c)
                sc[c] = _mm512_permutexvar_epi16(load_idx(kQ6ScaleIdx[c]), s16z);
            const float d = half(x[i].d);
            float dmin = 0.0f;
            if constexpr (!kQ3) dmin = half(x[i].dmin);
            for (int t = 0; t < NA; ++t) {
                const auto* yb = reinterpret_cast<const block_q8_K*>(a + t * a_stride) + i;
                const __m256i bsums =
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb->bsums));
                __m512i isum = _mm512_setzero_si512();
                if constexpr (kQ3) {
                    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(bsums, s16), 2);
                    isum = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), offset));
                }
                for (int c = 0; c < 4; ++c) {
                    const __m512i q8 = _mm512_loadu_si512(yb->qs + 64 * c);
                    isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(u[c], q8), sc[c]);
                }
                if constexpr (!kQ3) {
                    // Q2_K as the AVX2 kernel: the mins' share first, then the levels'.
                    const __m256i msum = _mm256_madd_epi16(mins16, bsums);
                    acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-dmin * yb->d),
                                             _mm256_cvtepi32_ps(msum), acc[t]);
                }
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * yb->d),
                                         _mm256_cvtepi32_ps(fold_lanes(isum)), acc[t]);
            }
        }
        for (int t = 0; t < NA; ++t) y[t * y_stride] = hsum256(acc[t]);
    }

    // Q3_K's sixteen 6-bit scales (stored + 32) unpacked as ggml does, minus 32, as int8.
    static __m128i q3_scales(const uint8_t* packed) {
        constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        uint32_t aux[4];
        std::memcpy(aux, packed, 12);
        const uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
        return _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(aux)),
                            _mm_set1_epi8(32));
    }
};

}  // namespace

void tile_q4_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<K4<block_q4_K, false>>(n / QK_K, static_cast<const uint8_t*>(w), w_stride, n_w,
                                    static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q5_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<K4<block_q5_K, true>>(n / QK_K, static_cast<const uint8_t*>(w), w_stride, n_w,
                                   static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q6_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<Q6K>(n / QK_K, static_cast<const uint8_t*>(w), w_stride, n_w,
                  static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q2_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<K2or3<false>>(n / QK_K, static_cast<const uint8_t*>(w), w_stride, n_w,
                           static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

void tile_q3_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_tile<K2or3<true>>(n / QK_K, static_cast<const uint8_t*>(w), w_stride, n_w,
                          static_cast<const uint8_t*>(a), a_stride, n_a, y, y_stride);
}

}  // namespace strata::quant::avx512
