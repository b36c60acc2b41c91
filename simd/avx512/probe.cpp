// AVX-512 loops of the machine probes (simd/probe.h).
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include "simd/probe_kernels.h"

namespace strata::simd::probe {

// Four 64-byte loads per step into four accumulators: enough loads in flight to saturate memory.
uint64_t read_avx512(const uint8_t* p, size_t bytes) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 256 <= bytes; i += 256) {
        s0 = _mm512_add_epi64(s0, _mm512_load_si512(p + i));
        s1 = _mm512_add_epi64(s1, _mm512_load_si512(p + i + 64));
        s2 = _mm512_add_epi64(s2, _mm512_load_si512(p + i + 128));
        s3 = _mm512_add_epi64(s3, _mm512_load_si512(p + i + 192));
    }
    // Lanes summed as unsigned (wrapping): _mm512_reduce_add_epi64 adds signed, which overflows.
    alignas(64) uint64_t lanes[8];
    _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
    uint64_t sum = 0;
    for (const uint64_t v : lanes) sum += v;
    return sum;
}

// Twelve independent vpdpbusd chains (latency × throughput of current cores is below 12), each
// instruction 64 multiply-adds: 128 operations.
double int8_loop_avx512(int64_t iters) {
    constexpr int kChains = 12;
    __m512i acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_epi32(c);
    const __m512i a = _mm512_set1_epi8(3);
    __m512i b = _mm512_set1_epi8(-5);
    for (int64_t i = 0; i < iters; ++i) {
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
        // An opaque dependency on b keeps the compiler from folding the loop.
        __asm__ volatile("" : "+v"(b));
    }
    __m512i s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm512_add_epi32(s, acc[c]);
    volatile int sink = _mm512_reduce_add_epi32(s);
    (void)sink;
    return static_cast<double>(iters) * kChains * 64 * 2;
}

}  // namespace strata::simd::probe
