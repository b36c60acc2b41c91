// AVX2 loops of the machine probes (simd/probe.h).
#include <immintrin.h>

#include "simd/probe_kernels.h"

namespace strata::simd::probe {

uint64_t read_avx2(const uint8_t* p, size_t bytes) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 128 <= bytes; i += 128) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
    }
    const __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// Without VNNI an int8 multiply-add is vpmaddubsw (32 products, pairs added) then vpmaddwd
// against ones and an add, as llama.cpp's AVX2 kernels do it: 64 operations per three
// instructions. Eight chains.
double int8_loop_avx2(int64_t iters) {
    constexpr int kChains = 8;
    __m256i acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_epi32(c);
    const __m256i a = _mm256_set1_epi8(3);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i b[kChains];  // one per chain, so that the products cannot be shared between chains
    for (int c = 0; c < kChains; ++c) b[c] = _mm256_set1_epi8(static_cast<char>(-5 - c));
    for (int64_t i = 0; i < iters; ++i) {
        for (int c = 0; c < kChains; ++c) {
            acc[c] =
                _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b[c]), ones));
            __asm__ volatile("" : "+x"(b[c]));  // opaque: no folding across iterations
        }
    }
    __m256i s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm256_add_epi32(s, acc[c]);
    alignas(32) int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
    volatile int32_t sink = lanes[0];
    (void)sink;
    return static_cast<double>(iters) * kChains * 32 * 2;
}

}  // namespace strata::simd::probe
