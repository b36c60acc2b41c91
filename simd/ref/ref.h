// Scalar reference kernels: the truth every fast kernel is tested against.
// One function per (format, operation); the traits table in simd/quant.cpp points at them.
//
// Conventions, for every function here: `n` counts elements and is a multiple of the format's
// block size (callers validate); buffers hold n / block_size whole blocks.
//  - dequantize_X: bit for bit what ggml's dequantize_row_X produces.
//  - quantize_X: the weight quantizer, what `llama-quantize` without an importance matrix
//    writes (ggml's quantize_row_X_ref).
//  - quantize_activation_X (partner formats only): what llama.cpp's x86 CPU backend computes
//    when it quantizes an activation row before a quantized matrix product.
//  - vec_dot_X: dot product of a weight row with an activation row in the partner format,
//    integer block sums combined with the scales as ggml combines them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::quant::ref {

// Float formats (float.cpp). F32 and F16 / BF16 weights pair with activations of the same type.
// vec_dot_X sums as ggml_vec_dot_X; gemm_dot_X as llamafile's tinyBLAS (n a multiple of its step:
// 16, or 32 for BF16), the order llama.cpp uses for batches (simd/matmul.h).
void dequantize_f32(const void* src, float* dst, int64_t n);
void quantize_f32(const float* src, void* dst, int64_t n);
float vec_dot_f32(int64_t n, const void* w, const void* a);
void dequantize_f16(const void* src, float* dst, int64_t n);
void quantize_f16(const float* src, void* dst, int64_t n);
float vec_dot_f16(int64_t n, const void* w, const void* a);
void dequantize_bf16(const void* src, float* dst, int64_t n);
void quantize_bf16(const float* src, void* dst, int64_t n);
float vec_dot_bf16(int64_t n, const void* w, const void* a);
float gemm_dot_f32(int64_t n, const void* w, const void* a);
float gemm_dot_f16(int64_t n, const void* w, const void* a);
float gemm_dot_bf16(int64_t n, const void* w, const void* a);

// Legacy 32-element formats (legacy.cpp).
void dequantize_q4_0(const void* src, float* dst, int64_t n);
void quantize_q4_0(const float* src, void* dst, int64_t n);
void dequantize_q4_1(const void* src, float* dst, int64_t n);
void quantize_q4_1(const float* src, void* dst, int64_t n);
void dequantize_q5_0(const void* src, float* dst, int64_t n);
void quantize_q5_0(const float* src, void* dst, int64_t n);
void dequantize_q5_1(const void* src, float* dst, int64_t n);
void quantize_q5_1(const float* src, void* dst, int64_t n);
void dequantize_q8_0(const void* src, float* dst, int64_t n);
void quantize_q8_0(const float* src, void* dst, int64_t n);
void dequantize_q8_1(const void* src, float* dst, int64_t n);
void quantize_q8_1(const float* src, void* dst, int64_t n);

// Activation quantizers of the partner formats (activations.cpp), and Q8_K's own conversions.
void quantize_activation_q8_0(const float* src, void* dst, int64_t n);
void quantize_activation_q8_1(const float* src, void* dst, int64_t n);
void quantize_activation_q8_K(const float* src, void* dst, int64_t n);
void dequantize_q8_K(const void* src, float* dst, int64_t n);
void quantize_q8_K(const float* src, void* dst, int64_t n);

// Dot products of the legacy formats (legacy_dot.cpp).
float vec_dot_q4_0(int64_t n, const void* w, const void* a);  // × Q8_0
float vec_dot_q4_1(int64_t n, const void* w, const void* a);  // × Q8_1
float vec_dot_q5_0(int64_t n, const void* w, const void* a);  // × Q8_0
float vec_dot_q5_1(int64_t n, const void* w, const void* a);  // × Q8_1
float vec_dot_q8_0(int64_t n, const void* w, const void* a);  // × Q8_0
float vec_dot_q8_1(int64_t n, const void* w, const void* a);  // × Q8_1

// K-quants, 256-element super-blocks (kquants_dequant.cpp, kquants_quantize.cpp).
void dequantize_q2_K(const void* src, float* dst, int64_t n);
void quantize_q2_K(const float* src, void* dst, int64_t n);
void dequantize_q3_K(const void* src, float* dst, int64_t n);
void quantize_q3_K(const float* src, void* dst, int64_t n);
void dequantize_q4_K(const void* src, float* dst, int64_t n);
void quantize_q4_K(const float* src, void* dst, int64_t n);
void dequantize_q5_K(const void* src, float* dst, int64_t n);
void quantize_q5_K(const float* src, void* dst, int64_t n);
void dequantize_q6_K(const void* src, float* dst, int64_t n);
void quantize_q6_K(const float* src, void* dst, int64_t n);

// Dot products of the K-quants with Q8_K activations (kquants_dot.cpp).
float vec_dot_q2_K(int64_t n, const void* w, const void* a);
float vec_dot_q3_K(int64_t n, const void* w, const void* a);
float vec_dot_q4_K(int64_t n, const void* w, const void* a);
float vec_dot_q5_K(int64_t n, const void* w, const void* a);
float vec_dot_q6_K(int64_t n, const void* w, const void* a);
float vec_dot_q8_K(int64_t n, const void* w, const void* a);

// The tile seam's scalar twin (tile.cpp): what every dispatch::TileFn computes, one `dot` per
// (weight row r, activation row t): y[t * y_stride + r] = dot(n, w + r * w_stride,
// a + t * a_stride). `dot` is the type's vec_dot reference.
void tile(float (*dot)(int64_t, const void*, const void*), int64_t n, const void* w,
          size_t w_stride, int64_t n_w, const void* a, size_t a_stride, int64_t n_a, float* y,
          int64_t y_stride);

}  // namespace strata::quant::ref
