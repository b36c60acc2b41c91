// Pieces shared by the AVX-512 kernels over weights interleaved sixteen rows at a time
// (simd/repack.h): kquants_x16.cpp and legacy_x16.cpp.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace strata::quant::avx512 {

// Software prefetch, this many bytes ahead of the block being multiplied: a group of 16 rows is
// one sequential stream, yet the hardware prefetcher alone left a matrix-vector product at
// about 70% of the read bandwidth (Zen 5, bench/kernels_bench.cpp); four Q4_K blocks ahead
// reaches it. Into L2 (T2), not L1: on an Intel Xeon with AMX (2 cores, 14.3 GB/s probe) T0
// prefetches held the products to 9.3 GB/s (Q4_K) and 12.3 (Q8_0) on one core, T2 reaches
// 10.9 and 14.3; fetching only some of the lines, or farther ahead, was slower there. The
// K-quant row kernels (kquants_tile.cpp) prefetch so too: there one core's Q4_K rows went from
// 8.6 to 11.1 GB/s and Q6_K from 9.9 to 12.0.
constexpr size_t kPrefetchAhead = 9216;

// Every cache line of the `bytes` at p + kPrefetchAhead (prefetches never fault, so running
// past the end of the weights is harmless).
template <size_t bytes>
inline void prefetch_ahead(const uint8_t* p) {
    for (size_t off = 0; off < bytes; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchAhead + off), _MM_HINT_T2);
}

inline __m512i bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// Eight lanes of sixteen rows added in hsum_float_8's tree: (0+4 + 2+6) + (1+5 + 3+7).
inline __m512 hsum_lanes8(const __m512 acc[8]) {
    return _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[0], acc[4]), _mm512_add_ps(acc[2], acc[6])),
        _mm512_add_ps(_mm512_add_ps(acc[1], acc[5]), _mm512_add_ps(acc[3], acc[7])));
}

using GroupRowsFn = void (*)(int64_t, const uint8_t*, const uint8_t*, size_t, float*, int64_t);

// Every group of 16 rows (nb blocks of group_block bytes each) against the activation rows,
// four at a time.
template <GroupRowsFn F1, GroupRowsFn F2, GroupRowsFn F3, GroupRowsFn F4>
void run_groups(int64_t nb, const void* w, size_t group_block, int64_t n_w, const void* a,
                size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    for (int64_t g = 0; g < n_w / 16; ++g) {
        const uint8_t* wg = wb + static_cast<size_t>(g) * group_block * static_cast<size_t>(nb);
        float* yg = y + g * 16;
        int64_t t = 0;
        for (; t + 4 <= n_a; t += 4)
            F4(nb, wg, ab + static_cast<size_t>(t) * a_stride, a_stride, yg + t * y_stride,
               y_stride);
        const uint8_t* at = ab + static_cast<size_t>(t) * a_stride;
        float* yt = yg + t * y_stride;
        switch (n_a - t) {
            case 1:
                F1(nb, wg, at, a_stride, yt, y_stride);
                break;
            case 2:
                F2(nb, wg, at, a_stride, yt, y_stride);
                break;
            case 3:
                F3(nb, wg, at, a_stride, yt, y_stride);
                break;
            default:
                break;
        }
    }
}

}  // namespace strata::quant::avx512
