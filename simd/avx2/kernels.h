// AVX2 + FMA kernels (this folder is compiled with -mavx2 -mfma -mf16c -mbmi2). Reached only
// through simd/dispatch, which registers them on CPUs that support them; each computes what its
// scalar reference in simd/ref computes, integer block sums exactly, float sums in another order.
#pragma once

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

}  // namespace strata::quant::avx2
