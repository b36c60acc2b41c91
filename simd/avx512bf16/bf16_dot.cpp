// AVX-512 BF16 dot products in llama.cpp's two orders (see kernels.h). The lane sums follow
// _mm512_reduce_add_ps, the reduction the reference is compiled with.
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include "simd/avx512bf16/kernels.h"
#include "simd/fp16.h"

// Products and sums must round where the reference rounds: no contraction into fused
// multiply-adds beyond the ones written.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

namespace strata::quant::avx512bf16 {
namespace {

inline __m512bh load_bf16_pairs(const uint16_t* p) {
    return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p));
}

}  // namespace

float vec_dot_bf16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    __m512 c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        c1 = _mm512_dpbf16_ps(c1, load_bf16_pairs(x + i), load_bf16_pairs(y + i));
        c2 = _mm512_dpbf16_ps(c2, load_bf16_pairs(x + i + 32), load_bf16_pairs(y + i + 32));
    }
    double sum = avx512::reduce_add(c1);
    sum += static_cast<double>(avx512::reduce_add(c2));
    for (; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
    return static_cast<float>(sum);
}

float gemm_dot_bf16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i + 32 <= n; i += 32)
        acc = _mm512_dpbf16_ps(acc, load_bf16_pairs(x + i), load_bf16_pairs(y + i));
    return avx512::reduce_add(acc);
}

}  // namespace strata::quant::avx512bf16
