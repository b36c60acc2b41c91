// AVX-512 VNNI products of Q4_K and Q6_K weights interleaved sixteen rows at a time
// (simd/repack.h) with Q8_K activations. Each 64-byte load holds four levels of each of sixteen
// rows (Q4_K: a nibble each; Q6_K: two loads of ql and one of qh make four vectors of levels);
// a level vector goes through one vpmaddubsw against four activation bytes broadcast to every
// lane and one vpdpwssd with its sub-block's scale of each row, so a lane accumulates one row
// and no horizontal sum is ever needed. The sums are kept apart as llama.cpp's AVX2 kernels
// keep them (eight float lanes per row; Q4_K four more of mins) and added in their order at
// the end: the results equal the row kernels' (and so llama.cpp's) bit for bit, and a matrix
// gives the same bits interleaved or not (an expert read into the cache in rows, say).
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include <array>

#include "simd/avx512/kernels.h"
#include "simd/avx512/x16.h"
#include "simd/quant.h"
#include "simd/repack.h"

namespace strata::quant::avx512 {
namespace {

constexpr size_t kGroupBlock = 16 * sizeof(block_q4_K);    // 2,304
constexpr size_t kQ6GroupBlock = 16 * sizeof(block_q6_K);  // 3,360

// vpshufb indices (within each 128-bit lane): byte j of every dword to both of its int16
// halves (a row's scale or min of sub-block j, 4k + j, for vpdpwssd against two int16 sums).
constexpr std::array<uint8_t, 64> byte_to_pair(int j) {
    std::array<uint8_t, 64> idx{};
    for (int b = 0; b < 64; ++b)
        idx[b] = b % 2 == 0 ? static_cast<uint8_t>((b % 16) / 4 * 4 + j) : 0x80;
    return idx;
}
alignas(64) constexpr std::array<std::array<uint8_t, 64>, 4> kPairIdx = {
    byte_to_pair(0), byte_to_pair(1), byte_to_pair(2), byte_to_pair(3)};

// Signed bytes to int16 halves (then an arithmetic shift right by 8): bytes j0 and j1 of every
// dword to the high bytes of its low and high halves.
constexpr std::array<uint8_t, 64> bytes_to_high(int j0, int j1) {
    std::array<uint8_t, 64> idx{};
    for (int b = 0; b < 64; ++b) {
        const int base = b % 16 / 4 * 4;
        idx[b] = b % 4 == 1   ? static_cast<uint8_t>(base + j0)
                 : b % 4 == 3 ? static_cast<uint8_t>(base + j1)
                              : 0x80;
    }
    return idx;
}
// Q6_K: scale j % 4 of a word in both halves; scales 2p and 2p + 1 of a word in the two halves.
alignas(64) constexpr std::array<std::array<uint8_t, 64>, 4> kSignedPairIdx = {
    bytes_to_high(0, 0), bytes_to_high(1, 1), bytes_to_high(2, 2), bytes_to_high(3, 3)};
alignas(64) constexpr std::array<std::array<uint8_t, 64>, 2> kSignedTwoIdx = {bytes_to_high(0, 1),
                                                                              bytes_to_high(2, 3)};

inline __m512i load_idx(const std::array<uint8_t, 64>& idx) {
    return _mm512_load_si512(idx.data());
}

// One group of 16 rows times NA activation rows (NA ≤ 4): y[t * y_stride + r], r < 16.
template <int NA>
void group_rows(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                int64_t y_stride) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i kmask1 = _mm512_set1_epi32(0x3f3f3f3f);
    const __m512i kmask2 = _mm512_set1_epi32(0x0f0f0f0f);
    const __m512i kmask3 = _mm512_set1_epi32(0x03030303);
    // llama.cpp's eight float lanes of each row (lane k: bytes 4k..4k+3 of every 32-byte chunk
    // of qs, low and high nibbles) and its four lanes of mins (sub-blocks 2m and 2m + 1).
    __m512 acc[NA][8], acc_mins[NA][4];
    for (int t = 0; t < NA; ++t) {
        for (auto& v : acc[t]) v = _mm512_setzero_ps();
        for (auto& v : acc_mins[t]) v = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = w + static_cast<size_t>(i) * kGroupBlock;
        prefetch_ahead<kGroupBlock>(b);
        const block_q8_K* q8[NA];
        for (int t = 0; t < NA; ++t)
            q8[t] = reinterpret_cast<const block_q8_K*>(a + t * a_stride) + i;
        // ggml's kmask unpacking, sixteen rows at once: bytes of s[0] / s[1] are the scales of
        // sub-blocks 0..3 / 4..7, those of m[0] / m[1] their mins; each then goes to both int16
        // halves of its row's dword, for vpdpwssd against two int16 sums.
        const __m512i u0 = _mm512_loadu_si512(b + 64);
        const __m512i u1 = _mm512_loadu_si512(b + 128);
        const __m512i u2 = _mm512_loadu_si512(b + 192);
        const __m512i s[2] = {
            _mm512_and_si512(u0, kmask1),
            _mm512_or_si512(
                _mm512_and_si512(u2, kmask2),
                _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), kmask3), 4))};
        const __m512i m[2] = {
            _mm512_and_si512(u1, kmask1),
            _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi32(u2, 4), kmask2),
                _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), kmask3), 4))};
        __m512i sc[8];
        for (int j = 0; j < 8; ++j)
            sc[j] = _mm512_shuffle_epi8(s[j / 4], load_idx(kPairIdx[j % 4]));
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
        const __m512 dmin =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32)));
        for (int k = 0; k < 8; ++k) {
            __m512i sumi[NA];
            for (int t = 0; t < NA; ++t) sumi[t] = _mm512_setzero_si512();
            for (int c = 0; c < 4; ++c) {
                const __m512i v = _mm512_loadu_si512(b + 256 + 64 * (8 * c + k));
                const __m512i lo = _mm512_and_si512(v, low4);
                const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
                for (int t = 0; t < NA; ++t) {
                    const int8_t* qa = q8[t]->qs + 64 * c + 4 * k;
                    // Level·q8 pairs are exact in int16 (at most 2·15·128), and so is the sum.
                    sumi[t] = _mm512_dpwssd_epi32(sumi[t], _mm512_maddubs_epi16(lo, bcast32(qa)),
                                                  sc[2 * c]);
                    sumi[t] = _mm512_dpwssd_epi32(
                        sumi[t], _mm512_maddubs_epi16(hi, bcast32(qa + 32)), sc[2 * c + 1]);
                }
            }
            for (int t = 0; t < NA; ++t)
                acc[t][k] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(q8[t]->d)),
                                            _mm512_cvtepi32_ps(sumi[t]), acc[t][k]);
        }
        __m512i mins[8];
        for (int j = 0; j < 8; ++j)
            mins[j] = _mm512_shuffle_epi8(m[j / 4], load_idx(kPairIdx[j % 4]));
        for (int t = 0; t < NA; ++t) {
            const __m512 dm = _mm512_mul_ps(dmin, _mm512_set1_ps(q8[t]->d));
            for (int l = 0; l < 4; ++l) {
                // Lane l: min 2l · (bsums 4l, 4l + 1) + min 2l + 1 · (bsums 4l + 2, 4l + 3).
                __m512i msum = _mm512_dpwssd_epi32(_mm512_setzero_si512(), mins[2 * l],
                                                   bcast32(q8[t]->bsums + 4 * l));
                msum =
                    _mm512_dpwssd_epi32(msum, mins[2 * l + 1], bcast32(q8[t]->bsums + 4 * l + 2));
                acc_mins[t][l] = _mm512_fnmadd_ps(dm, _mm512_cvtepi32_ps(msum), acc_mins[t][l]);
            }
        }
    }
    for (int t = 0; t < NA; ++t) {
        // hsum_float_8's tree, then (l0 + l2) + (l1 + l3) of the mins, as the row kernels.
        const __m512 h = hsum_lanes8(acc[t]);
        const __m512 mm = _mm512_add_ps(_mm512_add_ps(acc_mins[t][0], acc_mins[t][2]),
                                        _mm512_add_ps(acc_mins[t][1], acc_mins[t][3]));
        _mm512_storeu_ps(y + t * y_stride, _mm512_add_ps(h, mm));
    }
}

// Q6_K, sixteen rows times NA activation rows (NA ≤ 4). Lane k of llama.cpp's eight holds
// elements 32m + 4k .. +3 (m < 4) of each 128-element half, less 32 (bsum 2k · scale 2k +
// bsum 2k+1 · scale 2k+1); levels u = low nibble | two high bits << 4 in 0..63.
template <int NA>
void group_rows_q6(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                   int64_t y_stride) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i bits45 = _mm512_set1_epi8(0x30);
    __m512 acc[NA][8];
    for (int t = 0; t < NA; ++t)
        for (auto& v : acc[t]) v = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = w + static_cast<size_t>(i) * kQ6GroupBlock;
        prefetch_ahead<kQ6GroupBlock>(b);
        const block_q8_K* q8[NA];
        for (int t = 0; t < NA; ++t)
            q8[t] = reinterpret_cast<const block_q8_K*>(a + t * a_stride) + i;
        __m512i words[4];
        for (int k = 0; k < 4; ++k) words[k] = _mm512_loadu_si512(b + 32 + 64 * k);
        __m512i sc[16];
        for (int j = 0; j < 16; ++j)
            sc[j] = _mm512_srai_epi16(
                _mm512_shuffle_epi8(words[j / 4], load_idx(kSignedPairIdx[j % 4])), 8);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
        for (int k = 0; k < 8; ++k) {
            const __m512i two = _mm512_srai_epi16(
                _mm512_shuffle_epi8(words[k / 2], load_idx(kSignedTwoIdx[k % 2])), 8);
            __m512i sumi[NA];
            for (int t = 0; t < NA; ++t) {
                const __m512i off =
                    _mm512_dpwssd_epi32(_mm512_setzero_si512(), two, bcast32(q8[t]->bsums + 2 * k));
                sumi[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(off, 5));
            }
            for (int h = 0; h < 2; ++h) {
                const __m512i qa = _mm512_loadu_si512(b + 288 + 64 * (16 * h + k));
                const __m512i qb = _mm512_loadu_si512(b + 288 + 64 * (16 * h + k + 8));
                const __m512i qh = _mm512_loadu_si512(b + 2336 + 64 * (8 * h + k));
                const __m512i u[4] = {
                    _mm512_or_si512(_mm512_and_si512(qa, low4),
                                    _mm512_and_si512(_mm512_slli_epi16(qh, 4), bits45)),
                    _mm512_or_si512(_mm512_and_si512(qb, low4),
                                    _mm512_and_si512(_mm512_slli_epi16(qh, 2), bits45)),
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qa, 4), low4),
                                    _mm512_and_si512(qh, bits45)),
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qb, 4), low4),
                                    _mm512_and_si512(_mm512_srli_epi16(qh, 2), bits45))};
                for (int t = 0; t < NA; ++t) {
                    const int8_t* e = q8[t]->qs + 128 * h + 4 * k;
                    for (int m = 0; m < 4; ++m)
                        sumi[t] = _mm512_dpwssd_epi32(
                            sumi[t], _mm512_maddubs_epi16(u[m], bcast32(e + 32 * m)),
                            sc[8 * h + 2 * m + k / 4]);
                }
            }
            for (int t = 0; t < NA; ++t)
                acc[t][k] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(q8[t]->d)),
                                            _mm512_cvtepi32_ps(sumi[t]), acc[t][k]);
        }
    }
    for (int t = 0; t < NA; ++t) {
        _mm512_storeu_ps(y + t * y_stride, hsum_lanes8(acc[t]));
    }
}

}  // namespace

void tile_q4_K_x16(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_groups<group_rows<1>, group_rows<2>, group_rows<3>, group_rows<4>>(
        n / QK_K, w, kGroupBlock, n_w, a, a_stride, n_a, y, y_stride);
}

void tile_q6_K_x16(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run_groups<group_rows_q6<1>, group_rows_q6<2>, group_rows_q6<3>, group_rows_q6<4>>(
        n / QK_K, w, kQ6GroupBlock, n_w, a, a_stride, n_a, y, y_stride);
}

}  // namespace strata::quant::avx512
