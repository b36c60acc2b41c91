// AVX-512 dot products of F32 and F16 in llama.cpp's two orders (see kernels.h). The lane
// sums follow _mm512_reduce_add_ps, the reduction the reference is compiled with.
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include "simd/avx512/kernels.h"
#include "simd/float_order.h"
#include "simd/fp16.h"

// Products and sums must round where the reference rounds: no contraction into fused
// multiply-adds beyond the ones written.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

namespace strata::quant::avx512 {
namespace {

// The masked (zeroing) forms of the conversions and extracts below compute the same as the
// plain ones; GCC 12's plain forms trip -Wuninitialized on their internal undefined vector.
inline __m512 load_f16(const uint16_t* p) {
    return _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Four 16-lane accumulators over steps of 64 elements, combined (0+2) + (1+3) and reduced: the
// common core of ggml_vec_dot_f32 and ggml_vec_dot_f16. Returns the lane sum; *done is the
// number of elements consumed.
template <typename Load, typename T>
float four_lanes(const T* x, const T* y, int64_t n, int64_t* done, Load load) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        for (int r = 0; r < 4; ++r)
            acc[r] = _mm512_fmadd_ps(load(x + i + 16 * r), load(y + i + 16 * r), acc[r]);
    }
    *done = i;
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
    return reduce_add(sum);
}

}  // namespace

float vec_dot_f32(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    int64_t i = 0;
    float sum = four_lanes(x, y, n, &i, [](const float* p) { return _mm512_loadu_ps(p); });
    // The rest one product at a time, as the reference's compiled remainder loop adds them.
    return simd::add_vec_remainder(x, y, i, n, n, sum);
}

float gemm_dot_f32(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i + 16 <= n; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), acc);
    return reduce_add(acc);
}

float vec_dot_f16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    int64_t i = 0;
    double sum = four_lanes(x, y, n, &i, load_f16);
    for (; i < n; ++i) sum += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
    return static_cast<float>(sum);
}

float gemm_dot_f16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i + 16 <= n; i += 16)
        acc = _mm512_fmadd_ps(load_f16(x + i), load_f16(y + i), acc);
    return reduce_add(acc);
}

}  // namespace strata::quant::avx512
