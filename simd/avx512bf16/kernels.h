// AVX-512 BF16 kernels: the BF16 float format's two products (this folder is compiled with the
// AVX-512 folder's flags plus -mavx512bf16). Reached only through simd/dispatch, which registers
// them at the avx512 level on CPUs that also have AVX512_BF16 (Zen 4 and later, Cooper Lake,
// Sapphire Rapids and later); Skylake-X, Cascade Lake and Ice Lake run the rest of the AVX-512
// level without them.
//
// The two orders are llama.cpp's AVX-512 BF16 build's (simd/float_order.h holds their scalar
// twins): vec_dot_bf16 as ggml_vec_dot_bf16, gemm_dot_bf16 as llamafile's tinyBLAS.
#pragma once

#include <cstdint>

namespace strata::quant::avx512bf16 {

float vec_dot_bf16(int64_t n, const void* w, const void* a);   // × BF16
float gemm_dot_bf16(int64_t n, const void* w, const void* a);  // × BF16

}  // namespace strata::quant::avx512bf16
