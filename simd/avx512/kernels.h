// AVX-512 kernels (this folder is compiled with -mavx512f/bw/vl/dq/vnni/bf16 -mfma -mf16c).
// Reached only through simd/dispatch, which registers them on CPUs that support them.
//
// The float formats have two products each, in the two orders llama.cpp's AVX-512 build sums
// them (simd/float_order.h describes both and holds their exact scalar twins):
//  - vec_dot_X: ggml_vec_dot_X, what llama.cpp runs for one activation row (decode), strided
//    activations and expert products;
//  - gemm_dot_X: llamafile's tinyBLAS, what it runs for batches of contiguous rows.
#pragma once

#include <cstdint>

namespace strata::quant::avx512 {

float vec_dot_f32(int64_t n, const void* w, const void* a);
float gemm_dot_f32(int64_t n, const void* w, const void* a);
float vec_dot_f16(int64_t n, const void* w, const void* a);    // × F16
float gemm_dot_f16(int64_t n, const void* w, const void* a);   // × F16
float vec_dot_bf16(int64_t n, const void* w, const void* a);   // × BF16
float gemm_dot_bf16(int64_t n, const void* w, const void* a);  // × BF16

}  // namespace strata::quant::avx512
