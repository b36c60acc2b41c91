// AVX2 + FMA kernels (this folder is compiled with -mavx2 -mfma -mf16c -mbmi2). Reached only
// through simd/dispatch, which registers them on CPUs that support them; each computes what its
// scalar reference in simd/ref computes, integer block sums exactly, float sums in another order.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::quant::avx2 {

float vec_dot_q4_0(int64_t n, const void* w, const void* a);  // × Q8_0
float vec_dot_q4_1(int64_t n, const void* w, const void* a);  // × Q8_1
float vec_dot_q5_0(int64_t n, const void* w, const void* a);  // × Q8_0
float vec_dot_q5_1(int64_t n, const void* w, const void* a);  // × Q8_1
float vec_dot_q8_0(int64_t n, const void* w, const void* a);  // × Q8_0
float vec_dot_q2_K(int64_t n, const void* w, const void* a);  // × Q8_K
float vec_dot_q3_K(int64_t n, const void* w, const void* a);  // × Q8_K
float vec_dot_q4_K(int64_t n, const void* w, const void* a);  // × Q8_K
float vec_dot_q5_K(int64_t n, const void* w, const void* a);  // × Q8_K
float vec_dot_q6_K(int64_t n, const void* w, const void* a);  // × Q8_K

// Tiles (signature of dispatch::TileFn) of the K-quants in Q4_K_M / Q5_K_M files: each weight
// row unpacked once for up to four activation rows, every result vec_dot's float bit for bit
// (so they stay in llama.cpp's order and belong to the exact level).
void tile_q4_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q5_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q6_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);

}  // namespace strata::quant::avx2
