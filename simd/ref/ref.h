// Scalar reference kernels: the truth every fast kernel is tested against.
// One function per (format, operation); the traits table in simd/quant.cpp points at them.
#pragma once

#include <cstdint>

namespace strata::quant::ref {

// Float formats (float.cpp). F32 and F16 / BF16 weights pair with activations of the same type.
void dequantize_f32(const void* src, float* dst, int64_t n);
void quantize_f32(const float* src, void* dst, int64_t n);
float vec_dot_f32(int64_t n, const void* w, const void* a);
void dequantize_f16(const void* src, float* dst, int64_t n);
void quantize_f16(const float* src, void* dst, int64_t n);
float vec_dot_f16(int64_t n, const void* w, const void* a);
void dequantize_bf16(const void* src, float* dst, int64_t n);
void quantize_bf16(const float* src, void* dst, int64_t n);
float vec_dot_bf16(int64_t n, const void* w, const void* a);

}  // namespace strata::quant::ref
