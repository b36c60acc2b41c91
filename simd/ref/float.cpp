// Reference kernels of the float formats. The dot products are the exact scalar twins of
// llama.cpp's ggml_vec_dot_f32 / _f16 / _bf16 as its AVX-512 build sums them (simd/float_order.h),
// so that every machine, with or without those instructions, computes them in the order of the
// build the golden set was made with; the compiler clones them for FMA and AVX-512 CPUs.
#include <cstring>

#include "simd/float_order.h"
#include "simd/fp16.h"
#include "simd/ref/ref.h"

namespace strata::quant::ref {

void dequantize_f32(const void* src, float* dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_f32(const float* src, void* dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

float vec_dot_f32(int64_t n, const void* w, const void* a) {
    return simd::dot_f32_vec(static_cast<const float*>(w), static_cast<const float*>(a), n);
}

void dequantize_f16(const void* src, float* dst, int64_t n) {
    const uint16_t* x = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}

void quantize_f16(const float* src, void* dst, int64_t n) {
    uint16_t* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

float vec_dot_f16(int64_t n, const void* w, const void* a) {
    return simd::dot_f16_vec(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n);
}

void dequantize_bf16(const void* src, float* dst, int64_t n) {
    const uint16_t* x = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}

void quantize_bf16(const float* src, void* dst, int64_t n) {
    uint16_t* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}

float vec_dot_bf16(int64_t n, const void* w, const void* a) {
    return simd::dot_bf16_vec(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n);
}

float gemm_dot_f32(int64_t n, const void* w, const void* a) {
    return simd::dot_f32_gemm(static_cast<const float*>(w), static_cast<const float*>(a), n);
}

float gemm_dot_f16(int64_t n, const void* w, const void* a) {
    return simd::dot_f16_gemm(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n);
}

float gemm_dot_bf16(int64_t n, const void* w, const void* a) {
    return simd::dot_bf16_gemm(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(a), n);
}

}  // namespace strata::quant::ref
