// AVX-512 kernels (this folder is compiled with -mavx512f/bw/vl/dq/vnni -mfma -mf16c;
// BF16 has its own folder, simd/avx512bf16, for the CPUs with AVX512_BF16).
// Reached only through simd/dispatch, which registers them on CPUs that support them.
//
// The float formats have two products each, in the two orders llama.cpp's AVX-512 build sums
// them (simd/float_order.h describes both and holds their exact scalar twins):
//  - vec_dot_X: ggml_vec_dot_X, what llama.cpp runs for one activation row (decode), strided
//    activations and expert products;
//  - gemm_dot_X: llamafile's tinyBLAS, what it runs for batches of contiguous rows.
//
// The quantized formats have tile kernels (dispatch::TileFn: n_w weight rows x n_a activation
// rows, each weight block unpacked once per group of up to 8 activation rows) built on VNNI;
// their integer sums are the reference's, their float sums ordered differently. And the
// activation quantizers, byte for byte the scalar references.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::quant::avx512 {

float vec_dot_f32(int64_t n, const void* w, const void* a);
float gemm_dot_f32(int64_t n, const void* w, const void* a);
float vec_dot_f16(int64_t n, const void* w, const void* a);   // × F16
float gemm_dot_f16(int64_t n, const void* w, const void* a);  // × F16

// Attention's decoding step (attention.cpp): out[c] = simd::dot_f32_vec_prefix(x, y[c], n,
// n_total) for c < n_y, bit for bit, x's loads shared by the n_y products.
void vec_dot_f32_prefix_rows(const float* x, const float* const* y, int n_y, int64_t n,
                             int64_t n_total, float* out);
// out[r · 4 + c] = simd::dot_f32_vec_prefix(x[r], y[c], n, n_total), bit for bit (as
// simd::dot_f32_vec_prefix_4x4, in registers).
void vec_dot_f32_prefix_4x4(const float* const* x, const float* const* y, int64_t n,
                            int64_t n_total, float* out);
// out[r · 4 + c] = simd::dot_f32_gemm(x[r], y[c], n), bit for bit (simd::dot_f32_gemm_4x4 with
// its sixteen accumulators in registers): attention's batched weighted sums.
void dot_f32_gemm_4x4(const float* const* x, const float* const* y, int64_t n, float* out);

// Tile kernels (kquants_tile.cpp: × Q8_K; legacy_tile.cpp: × Q8_0), signature of
// dispatch::TileFn.
void tile_q2_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q3_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
// Q4_K weights interleaved sixteen rows at a time (simd/repack.h); n_w a multiple of 16.
void tile_q4_K_x16(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q6_K_x16(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
// Q8_0, Q5_0 and Q4_0 weights so interleaved (legacy_x16.cpp).
void tile_q8_0_x16(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q5_0_x16(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q4_0_x16(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q4_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q5_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q6_K(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q8_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q5_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);
void tile_q4_0(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
               size_t a_stride, int64_t n_a, float* y, int64_t y_stride);

// Sixteen rows into the interleaved layout (regroup.cpp), signature of dispatch::InterleaveFn.
bool interleave_q4_K_x16(const uint8_t* rows, uint8_t* group, int64_t nb);
bool interleave_q6_K_x16(const uint8_t* rows, uint8_t* group, int64_t nb);

// Activation quantizers (activations.cpp).
void quantize_activation_q8_0(const float* src, void* dst, int64_t n);
void quantize_activation_q8_1(const float* src, void* dst, int64_t n);
void quantize_activation_q8_K(const float* src, void* dst, int64_t n);

}  // namespace strata::quant::avx512
