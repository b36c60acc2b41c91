// Activation quantizers of the partner formats (Q8_0, Q8_1, Q8_K).
//
// llama.cpp never multiplies a quantized weight by float activations: it quantizes the
// activation row first, and its result depends on exactly how. The x86 build (AVX / AVX2 /
// AVX-512, i.e. every machine the golden logits were made on) quantizes Q8_0 and Q8_1 with its
// own vector code, which differs from the _ref quantizer used for weights in two ways:
//  - the multiplier is 127 / amax, not 1 / (amax / 127) (they can differ in the last bit);
//  - products are rounded half to even (_mm256_round_ps), not half away from zero (roundf).
// Q8_K has no vector quantizer on x86; the reference one is used, and it rounds half to even.
#include <cmath>
#include <cstring>

#include "simd/quant.h"
#include "simd/ref/common.h"
#include "simd/ref/ref.h"

namespace strata::quant::ref {
namespace {

// One 32-element block as the x86 backend quantizes it; returns Σq for Q8_1's `s`.
int quantize_block_x86(const float* x, int8_t* qs, float* d) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    *d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
        // The vector code packs int32 → int8 with signed saturation.
        const int q = clamp_int(nearest_int(x[j] * id), -128, 127);
        qs[j] = static_cast<int8_t>(q);
        sum += q;
    }
    return sum;
}

}  // namespace

void quantize_activation_q8_0(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / QK8_0; ++i, src += QK8_0) {
        float d;
        quantize_block_x86(src, b[i].qs, &d);
        b[i].d = to_f16(d);
    }
}

// `s` is d·Σq with the unrounded float d, then rounded to f16 like d itself.
void quantize_activation_q8_1(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / QK8_1; ++i, src += QK8_1) {
        float d;
        const int sum = quantize_block_x86(src, b[i].qs, &d);
        b[i].d = to_f16(d);
        b[i].s = to_f16(d * static_cast<float>(sum));
    }
}

// Q8_K: the signed extreme maps to -127 (scale -127 / max), d = 1 / scale is kept as a float,
// and bsums[g] = Σ of quants 16g .. 16g + 15 lets the K-quant dot products apply their mins
// without touching the quants again.
void quantize_q8_K(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            if (std::fabs(src[j]) > amax) {
                amax = std::fabs(src[j]);
                max = src[j];
            }
        }
        if (amax == 0.0f) {
            // ggml leaves bsums unset here; zero is their true value.
            std::memset(&b[i], 0, sizeof(block_q8_K));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; ++j)
            b[i].qs[j] = static_cast<int8_t>(clamp_int(nearest_int(iscale * src[j]), -128, 127));
        for (int g = 0; g < QK_K / 16; ++g) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += b[i].qs[16 * g + j];
            b[i].bsums[g] = static_cast<int16_t>(sum);
        }
        b[i].d = 1.0f / iscale;
    }
}

void quantize_activation_q8_K(const float* src, void* dst, int64_t n) {
    quantize_q8_K(src, dst, n);
}

void dequantize_q8_K(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q8_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K)
        for (int j = 0; j < QK_K; ++j) dst[j] = b[i].d * static_cast<float>(b[i].qs[j]);
}

}  // namespace strata::quant::ref
