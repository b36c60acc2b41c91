// AVX2 dot products of the symmetric legacy formats with Q8_0: one 32-element block per step,
// levels widened to signed bytes, an exact int32 block sum, then acc += (d_w·d_a)·sum in float.
#include <immintrin.h>

#include "simd/avx2/kernels.h"
#include "simd/avx2/util.h"
#include "simd/fp16.h"
#include "simd/quant.h"

namespace strata::quant::avx2 {
namespace {

// Σ_blocks (d_w·d_a)·Σ level·q8, with `levels(block)` giving a block's 32 signed levels.
template <typename Block, typename Levels>
float dot_with_q8_0(int64_t n, const void* w, const void* a, Levels levels) {
    const auto* x = static_cast<const Block*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
        const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
        const __m256i sum = dot_i8(levels(x[i]), qy);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc);
    }
    return hsum(acc);
}

}  // namespace

float vec_dot_q4_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q4_0>(n, w, a, [](const block_q4_0& b) {
        return _mm256_sub_epi8(nibbles_32(b.qs), _mm256_set1_epi8(8));
    });
}

float vec_dot_q5_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q5_0>(n, w, a, [](const block_q5_0& b) {
        // Fifth bit set → +16; levels 0..31 centred by -16.
        const __m256i high = _mm256_and_si256(bits_32(b.qh), _mm256_set1_epi8(0x10));
        return _mm256_sub_epi8(_mm256_or_si256(nibbles_32(b.qs), high), _mm256_set1_epi8(16));
    });
}

float vec_dot_q8_0(int64_t n, const void* w, const void* a) {
    return dot_with_q8_0<block_q8_0>(n, w, a, [](const block_q8_0& b) {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    });
}

}  // namespace strata::quant::avx2
