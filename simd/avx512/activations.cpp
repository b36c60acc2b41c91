// AVX-512 activation quantizers of the partner formats (Q8_0, Q8_1, Q8_K): the same bytes as the
// scalar references in simd/ref/activations.cpp, for every input.
//
// Why they match bit for bit: the scale is computed from the same maximum with the same scalar
// expression; each product x·scale is one float multiply in both; vcvtps2dq rounds half to even
// as ggml's nearest_int does (exact below 2^22, and |x·scale| <= 127 here); NaN lanes are zeroed
// as nearest_int maps NaN to 0; the int8 conversion saturates as the reference clamps. The
// maximum ignores NaN as the reference's comparisons do (vmaxps returns its second operand when
// either is NaN, so the running maximum is passed second).
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include <cstring>

#include "simd/avx512/kernels.h"
#include "simd/fp16.h"
#include "simd/quant.h"

namespace strata::quant::avx512 {
namespace {

inline __m512 abs_ps(__m512 v) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

// round(x * scale) as int32, clamped to int8's range, NaN → 0.
inline __m512i quantize16(__m512 x, __m512 scale) {
    const __m512 p = _mm512_mul_ps(x, scale);
    const __m512i q = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q), p);
    return _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128));
}

// One 32-element block as llama.cpp's x86 backend quantizes it (quantize_block_x86); returns
// Σq for Q8_1.
inline int quantize_block32(const float* x, int8_t* qs, float* d) {
    const __m512 v0 = _mm512_loadu_ps(x);
    const __m512 v1 = _mm512_loadu_ps(x + 16);
    const __m512 m = _mm512_max_ps(abs_ps(v1), _mm512_max_ps(abs_ps(v0), _mm512_setzero_ps()));
    const float amax = _mm512_reduce_max_ps(m);
    *d = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m512i q0 = quantize16(v0, id);
    const __m512i q1 = quantize16(v1, id);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtepi32_epi8(q1));
    return _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
}

}  // namespace

void quantize_activation_q8_0(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / QK8_0; ++i, src += QK8_0) {
        float d;
        quantize_block32(src, b[i].qs, &d);
        b[i].d = fp32_to_fp16(d);
    }
}

void quantize_activation_q8_1(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / QK8_1; ++i, src += QK8_1) {
        float d;
        const int sum = quantize_block32(src, b[i].qs, &d);
        b[i].d = fp32_to_fp16(d);
        b[i].s = fp32_to_fp16(d * static_cast<float>(sum));
    }
}

// Q8_K: the element of largest magnitude, the first one on ties, sets the scale -127 / max.
void quantize_activation_q8_K(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_K*>(dst);
    constexpr int kVecs = QK_K / 16;
    for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < kVecs; ++k) m = _mm512_max_ps(abs_ps(_mm512_loadu_ps(src + 16 * k)), m);
        const float amax = _mm512_reduce_max_ps(m);
        if (amax == 0.0f) {
            std::memset(&b[i], 0, sizeof(block_q8_K));
            continue;
        }
        float max = 0.0f;
        const __m512 target = _mm512_set1_ps(amax);
        for (int k = 0; k < kVecs; ++k) {
            const __mmask16 hit =
                _mm512_cmp_ps_mask(abs_ps(_mm512_loadu_ps(src + 16 * k)), target, _CMP_EQ_OQ);
            if (hit != 0) {
                max = src[16 * k + __builtin_ctz(hit)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m512 scale = _mm512_set1_ps(iscale);
        for (int k = 0; k < kVecs; ++k) {
            const __m512i q = quantize16(_mm512_loadu_ps(src + 16 * k), scale);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(b[i].qs + 16 * k), _mm512_cvtepi32_epi8(q));
            b[i].bsums[k] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
        }
        b[i].d = 1.0f / iscale;
    }
}

}  // namespace strata::quant::avx512
