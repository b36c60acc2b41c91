// Sixteen rows of Q4_K / Q6_K into the interleaved layout (simd/repack.h), block by block. The
// layout is a transpose of 32-bit words: word m of a block's field, row r, goes to 64 m + 4 r of
// the field's place in the group. The level fields (64 bytes of each row at a time) go through
// a 16 × 16 transpose in registers; the short ones (scales, d) through dword gathers, one 64-byte
// line of the group each. The scalar regrouping moves the same bytes four at a time
// (simd/repack.cpp).
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include <climits>
#include <cstddef>

#include "simd/avx512/kernels.h"
#include "simd/quant.h"

namespace strata::quant::avx512 {
namespace {

constexpr int kRows = 16;

// Byte offsets of row r's block, r · row_bytes, as gather indices; false when they do not fit
// in int32 (rows of more than 134 MB: no such model).
bool row_index(size_t row_bytes, __m512i* index) {
    if (row_bytes > static_cast<size_t>(INT_MAX) / kRows) return false;
    const auto rb = static_cast<int>(row_bytes);
    *index =
        _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                           _mm512_set1_epi32(rb));
    return true;
}

// Word `at` (a byte offset, any alignment) of the sixteen rows' block.
inline __m512i words(__m512i index, const uint8_t* block, size_t at) {
    return _mm512_i32gather_epi32(index, block + at, 1);
}

inline void store_line(uint8_t* to, __m512i v) {
    _mm512_storeu_si512(to, v);
}

// Words 0..15 of the 64 bytes at `at` of each of the sixteen rows' block (row r at
// block + r · row_bytes) into sixteen lines at `to`, line m holding word m of rows 0..15.
inline void transpose_16(const uint8_t* block, size_t row_bytes, size_t at, uint8_t* to) {
    __m512i a[16], t[16];
    for (int r = 0; r < 16; ++r)
        a[r] = _mm512_loadu_si512(block + static_cast<size_t>(r) * row_bytes + at);
    // Per 128-bit lane L: t[2i], t[2i + 1] interleave rows 2i and 2i + 1 (words 4L, 4L + 1 and
    // 4L + 2, 4L + 3); then a[4i + j] holds word 4L + j of rows 4i .. 4i + 3.
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
        a[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        a[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        a[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        a[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    // Lane L of a[j], a[4 + j], a[8 + j], a[12 + j] side by side is word 4L + j of every row.
    for (int j = 0; j < 4; ++j) {
        const __m512i s0 = _mm512_shuffle_i32x4(a[j], a[4 + j], 0x44);
        const __m512i s1 = _mm512_shuffle_i32x4(a[j], a[4 + j], 0xEE);
        const __m512i s2 = _mm512_shuffle_i32x4(a[8 + j], a[12 + j], 0x44);
        const __m512i s3 = _mm512_shuffle_i32x4(a[8 + j], a[12 + j], 0xEE);
        store_line(to + 64 * (0 + j), _mm512_shuffle_i32x4(s0, s2, 0x88));
        store_line(to + 64 * (4 + j), _mm512_shuffle_i32x4(s0, s2, 0xDD));
        store_line(to + 64 * (8 + j), _mm512_shuffle_i32x4(s1, s3, 0x88));
        store_line(to + 64 * (12 + j), _mm512_shuffle_i32x4(s1, s3, 0xDD));
    }
}

// The low (high) halves of sixteen words, as sixteen F16 fields in 32 bytes.
inline void store_low_halves(uint8_t* to, __m512i v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to), _mm512_cvtepi32_epi16(v));
}
inline void store_high_halves(uint8_t* to, __m512i v) {
    store_low_halves(to, _mm512_srli_epi32(v, 16));
}

// Calls block(b, g, index, row_bytes) for each of the nb blocks of the sixteen rows: b the
// first row's block (row r's at b + r · row_bytes), g its place in the group.
template <typename B, typename F>
bool each_block(const uint8_t* rows, uint8_t* group, int64_t nb, F&& block) {
    const size_t row_bytes = static_cast<size_t>(nb) * sizeof(B);
    __m512i index;
    if (!row_index(row_bytes, &index)) return false;
    for (int64_t i = 0; i < nb; ++i)
        block(rows + static_cast<size_t>(i) * sizeof(B),
              group + static_cast<size_t>(i) * kRows * sizeof(B), index, row_bytes);
    return true;
}

}  // namespace

bool interleave_q4_K_x16(const uint8_t* rows, uint8_t* group, int64_t nb) {
    using B = block_q4_K;
    static_assert(offsetof(B, dmin) == offsetof(B, d) + 2);
    return each_block<B>(
        rows, group, nb, [](const uint8_t* b, uint8_t* g, __m512i index, size_t row_bytes) {
            const __m512i d_dmin = words(index, b, offsetof(B, d));
            store_low_halves(g, d_dmin);
            store_high_halves(g + 32, d_dmin);
            for (int k = 0; k < 3; ++k)
                store_line(g + 64 + 64 * k, words(index, b, offsetof(B, scales) + 4 * k));
            for (int h = 0; h < 2; ++h)
                transpose_16(b, row_bytes, offsetof(B, qs) + 64 * h, g + 256 + 64 * 16 * h);
        });
}

bool interleave_q6_K_x16(const uint8_t* rows, uint8_t* group, int64_t nb) {
    using B = block_q6_K;
    // d ends the block: it is read as the high half of the word that ends with it (the last two
    // scales, then d), so that no gather reads past the last row.
    static_assert(offsetof(B, d) + 2 == sizeof(B));
    return each_block<B>(
        rows, group, nb, [](const uint8_t* b, uint8_t* g, __m512i index, size_t row_bytes) {
            store_high_halves(g, words(index, b, offsetof(B, d) - 2));
            for (int w = 0; w < 4; ++w)
                store_line(g + 32 + 64 * w, words(index, b, offsetof(B, scales) + 4 * w));
            for (int h = 0; h < 2; ++h)
                transpose_16(b, row_bytes, offsetof(B, ql) + 64 * h, g + 288 + 64 * 16 * h);
            transpose_16(b, row_bytes, offsetof(B, qh), g + 2336);
        });
}

}  // namespace strata::quant::avx512
