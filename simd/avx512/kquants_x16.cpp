// AVX-512 VNNI product of Q4_K weights interleaved sixteen rows at a time (simd/repack.h) with
// Q8_K activations. Each 64-byte load holds four levels of each of sixteen rows; its low and
// high nibbles go through one vpmaddubsw each against four activation bytes broadcast to every
// lane and one vpdpwssd with that sub-block's scale of each row, so a lane accumulates one row
// and no horizontal sum is ever needed. The sums are kept apart as llama.cpp's AVX2 kernel
// keeps them (eight float lanes per row, four of mins) and added in its order at the end: the
// results equal the row kernels' (and so llama.cpp's) bit for bit, and a matrix gives the same
// bits interleaved or not (an expert read into the cache in rows, say).
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include <array>
#include <cstring>

#include "simd/avx512/kernels.h"
#include "simd/quant.h"
#include "simd/repack.h"

namespace strata::quant::avx512 {
namespace {

constexpr size_t kGroupBlock = 16 * sizeof(block_q4_K);  // 2,304

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

inline __m512i load_idx(const std::array<uint8_t, 64>& idx) {
    return _mm512_load_si512(idx.data());
}

inline __m512i bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
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
        const __m512 h = _mm512_add_ps(
            _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][4]), _mm512_add_ps(acc[t][2], acc[t][6])),
            _mm512_add_ps(_mm512_add_ps(acc[t][1], acc[t][5]),
                          _mm512_add_ps(acc[t][3], acc[t][7])));
        const __m512 mm = _mm512_add_ps(_mm512_add_ps(acc_mins[t][0], acc_mins[t][2]),
                                        _mm512_add_ps(acc_mins[t][1], acc_mins[t][3]));
        _mm512_storeu_ps(y + t * y_stride, _mm512_add_ps(h, mm));
    }
}

}  // namespace

void tile_q4_K_x16(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    const int64_t nb = n / QK_K;
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    for (int64_t g = 0; g < n_w / 16; ++g) {
        const uint8_t* wg = wb + static_cast<size_t>(g) * kGroupBlock * static_cast<size_t>(nb);
        float* yg = y + g * 16;
        int64_t t = 0;
        for (; t + 4 <= n_a; t += 4)
            group_rows<4>(nb, wg, ab + static_cast<size_t>(t) * a_stride, a_stride,
                          yg + t * y_stride, y_stride);
        const uint8_t* at = ab + static_cast<size_t>(t) * a_stride;
        float* yt = yg + t * y_stride;
        switch (n_a - t) {
            case 1:
                group_rows<1>(nb, wg, at, a_stride, yt, y_stride);
                break;
            case 2:
                group_rows<2>(nb, wg, at, a_stride, yt, y_stride);
                break;
            case 3:
                group_rows<3>(nb, wg, at, a_stride, yt, y_stride);
                break;
            default:
                break;
        }
    }
}

}  // namespace strata::quant::avx512
