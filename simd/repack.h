// Weights regrouped at load for the interleaved kernels: sixteen rows of a Q4_K, Q6_K, Q8_0,
// Q5_0 or Q4_0 matrix stored block by block, so that one 64-byte load holds four levels of each of
// the sixteen rows and vpmaddubsw multiplies them by four activation bytes broadcast to every lane.
// The lanes are the rows: there is no horizontal sum, the scales of sixteen rows unpack in a
// handful of vector instructions, and sixteen outputs are stored at once. Same bytes as the rows
// they replace (2,304 or 3,360 per block of 16 rows for Q4_K and Q6_K), so offsets of rows, expert
// slabs and per-head slices that fall on a multiple of sixteen rows are unchanged.
//
// Q4_K, block i of a group of 16 rows at byte 2304 * i of the group:
//   [0, 32)      d of rows 0..15 (F16)
//   [32, 64)     dmin of rows 0..15 (F16)
//   [64, 256)    the 12 scale bytes of each row as three 32-bit words: word k of row r at
//                64 + 64 k + 4 r
//   [256, 2304)  levels: for chunk c (0..3) and group g (0..7), 64 bytes at 256 + 64 (8 c + g),
//                row r's qs[32 c + 4 g .. 32 c + 4 g + 3] at 4 r. Low nibbles are elements
//                64 c + 4 g + 0..3 (sub-block 2 c), high nibbles 64 c + 32 + 4 g + 0..3.
// Q6_K, block i at byte 3360 * i:
//   [0, 32)      d of rows 0..15 (F16)
//   [32, 288)    the 16 scales of each row as four words: word w of row r at 32 + 64 w + 4 r
//   [288, 2336)  ql[64 h + 4 g .. +3] (h < 2, g < 16) of row r at 288 + 64 (16 h + g) + 4 r
//   [2336, 3360) qh[32 h + 4 g .. +3] (g < 8) of row r at 2336 + 64 (8 h + g) + 4 r
// The 32-element formats, block i at byte 16 · sizeof(block) · i (Q8_0 544, Q5_0 352, Q4_0 288),
// d of rows 0..15 at [0, 32), then
//   Q8_0: qs[4 g .. 4 g + 3] (g < 8) of row r at 32 + 64 g + 4 r
//   Q5_0: qh of row r at 32 + 4 r; qs[4 g .. 4 g + 3] (g < 4) of row r at 96 + 64 g + 4 r
//   Q4_0: qs[4 g .. 4 g + 3] (g < 4) of row r at 32 + 64 g + 4 r
//
// Sums: per row and block, eight exact integer sums (llama.cpp's AVX2 lanes: lane k holds the
// elements 32 m + 4 k .. +3 of each 128, times their sub-blocks' scales; Q4_K's mins·bsums in
// four more, Q6_K's -32 · scale · bsum in the eight), each converted and fused into its own
// float lane, the lanes added at the end in hsum_float_8's tree: llama.cpp's AVX2 order, which
// the row kernels keep too. The 32-element formats: lane k holds elements 4k..4k+3 of each
// block (a Q5_0 / Q4_0 group g's low nibbles are elements 4g.., its high nibbles 16 + 4g..),
// fused into its lane with d·d_a, then the same tree. A matrix therefore gives the same bits
// interleaved or in rows.
// Interleaving is used only where the kernel table offers an interleaved tile (the avx512
// level), never at STRATA_ISA=avx2.
#pragma once

#include <cstddef>
#include <cstdint>

#include "simd/quant.h"

namespace strata::simd {

inline constexpr int64_t kInterleaveRows = 16;

// Whether a matrix of `type`, n_in × n_out with contiguous rows, can be interleaved and
// multiplied so on this machine: the kernel table has an interleaved tile for the type and
// n_out is a multiple of 16.
bool can_interleave(quant::Type type, int64_t n_in, int64_t n_out);

// Rewrites n_rows contiguous rows (a multiple of 16) in place into the interleaved layout, and
// back. Types Q4_K, Q6_K, Q8_0, Q5_0 and Q4_0 (others are left as they are).
void interleave_rows(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows);
void deinterleave_rows(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows);
// The same from `src` into `dst` (another buffer of the same size).
void interleave_rows(quant::Type type, const uint8_t* src, uint8_t* dst, int64_t n_in,
                     int64_t n_rows);
void deinterleave_rows(quant::Type type, const uint8_t* src, uint8_t* dst, int64_t n_in,
                       int64_t n_rows);

// The scalar regrouping of one group of sixteen rows (nb blocks each) into the layout, which the
// ISA kernels (dispatch::TypeKernels::interleave_x16) equal byte for byte; other types: nothing.
void interleave_group_ref(quant::Type type, const uint8_t* rows, uint8_t* group, int64_t nb);

// Scalar twins of the interleaved tiles (TileFn shape: w is n_w interleaved rows, a multiple of
// 16; w_stride unused): the same integer sums and float steps, bit for bit, so it equals the
// row kernels' product of the same rows plain.
void tile_q4_K_x16_ref(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q6_K_x16_ref(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q8_0_x16_ref(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q5_0_x16_ref(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q4_0_x16_ref(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride);

}  // namespace strata::simd
