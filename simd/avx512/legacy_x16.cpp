// AVX-512 VNNI products of Q8_0, Q5_0 and Q4_0 weights interleaved sixteen rows at a time
// (simd/repack.h) with Q8_0 activations. A 64-byte load holds four signed levels of each of
// sixteen rows (a Q5_0 / Q4_0 load, eight: its low and high nibbles), so lane k of llama.cpp's
// eight (elements 4k..4k+3 of a block) is one vpdpbusd for all sixteen rows, with no horizontal
// sum. vpdpbusd takes unsigned bytes first: the activation bytes go in offset by 128 (a xor),
// and the accumulator starts from -128 times the sum of the four levels, so the integer is
// exactly Σ level·q8 as the row kernels' sign trick makes it. Each lane is then fused with
// d·d_a into its own float accumulator in block order and the eight added in hsum_float_8's
// tree: the row kernels' bits (legacy_tile.cpp), and so llama.cpp's.
#include "simd/avx512/util.h"  // first: see its note on GCC warnings

#include <immintrin.h>

#include <array>
#include <type_traits>

#include "simd/avx512/kernels.h"
#include "simd/avx512/x16.h"
#include "simd/quant.h"

namespace strata::quant::avx512 {
namespace {

template <typename B>
constexpr size_t kGroupBlock = 16 * sizeof(B);

// Q5_0: vpshufb indices (within each 128-bit lane) putting byte j of every dword (a row's qh)
// in all four of its bytes, and the bit each byte then tests: lane k's bytes e = 0..3 take
// bits 4k + e of qh, byte k / 2, bits 4 (k % 2) + e.
constexpr std::array<uint8_t, 64> qh_byte(int j) {
    std::array<uint8_t, 64> idx{};
    for (int b = 0; b < 64; ++b) idx[b] = static_cast<uint8_t>((b % 16) / 4 * 4 + j);
    return idx;
}
alignas(64) constexpr std::array<std::array<uint8_t, 64>, 4> kQhByte = {qh_byte(0), qh_byte(1),
                                                                        qh_byte(2), qh_byte(3)};
constexpr std::array<uint8_t, 64> qh_bits(int half) {
    std::array<uint8_t, 64> bits{};
    for (int b = 0; b < 64; ++b) bits[b] = static_cast<uint8_t>(1u << (4 * half + b % 4));
    return bits;
}
alignas(64) constexpr std::array<std::array<uint8_t, 64>, 2> kQhBits = {qh_bits(0), qh_bits(1)};

// The signed levels of lane k (elements 4k..4k+3) of the sixteen rows of block b.
template <typename B>
inline __m512i levels(const uint8_t* b, int k) {
    if constexpr (std::is_same_v<B, block_q8_0>) {
        return _mm512_loadu_si512(b + 32 + 64 * k);
    } else {
        constexpr size_t kLevels = std::is_same_v<B, block_q5_0> ? 96 : 32;
        const __m512i v = _mm512_loadu_si512(b + kLevels + 64 * (k % 4));
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        const __m512i nibble =
            k < 4 ? _mm512_and_si512(v, low4) : _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        if constexpr (std::is_same_v<B, block_q5_0>) {
            // Level = nibble | bit << 4, less 16: the nibble where the bit is set, else nibble
            // - 16.
            const __m512i qh = _mm512_loadu_si512(b + 32);
            const __m512i spread =
                _mm512_shuffle_epi8(qh, _mm512_load_si512(kQhByte[k / 2].data()));
            const __mmask64 clear =
                _mm512_testn_epi8_mask(spread, _mm512_load_si512(kQhBits[k % 2].data()));
            return _mm512_mask_sub_epi8(nibble, clear, nibble, _mm512_set1_epi8(16));
        } else {
            return _mm512_sub_epi8(nibble, _mm512_set1_epi8(8));
        }
    }
}

// One group of 16 rows times NA activation rows (NA ≤ 4): y[t * y_stride + r], r < 16.
template <typename B, int NA>
void group_rows(int64_t nb, const uint8_t* w, const uint8_t* a, size_t a_stride, float* y,
                int64_t y_stride) {
    const __m512i offset = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512 acc[NA][8];
    for (int t = 0; t < NA; ++t)
        for (auto& v : acc[t]) v = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = w + static_cast<size_t>(i) * kGroupBlock<B>;
        prefetch_ahead<kGroupBlock<B>>(b);
        const block_q8_0* q8[NA];
        __m512 scale[NA];
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
        for (int t = 0; t < NA; ++t) {
            q8[t] = reinterpret_cast<const block_q8_0*>(a + t * a_stride) + i;
            scale[t] = _mm512_mul_ps(d, _mm512_set1_ps(half(q8[t]->d)));
        }
        for (int k = 0; k < 8; ++k) {
            const __m512i lv = levels<B>(b, k);
            // -128 · (sum of the row's four levels), then + Σ (q8 + 128) · level.
            const __m512i start = _mm512_sub_epi32(
                _mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, lv));
            for (int t = 0; t < NA; ++t) {
                const __m512i qa = _mm512_xor_si512(bcast32(q8[t]->qs + 4 * k), offset);
                const __m512i sumi = _mm512_dpbusd_epi32(start, qa, lv);
                acc[t][k] = _mm512_fmadd_ps(scale[t], _mm512_cvtepi32_ps(sumi), acc[t][k]);
            }
        }
    }
    for (int t = 0; t < NA; ++t) _mm512_storeu_ps(y + t * y_stride, hsum_lanes8(acc[t]));
}

template <typename B>
void run(int64_t n, const void* w, int64_t n_w, const void* a, size_t a_stride, int64_t n_a,
         float* y, int64_t y_stride) {
    run_groups<group_rows<B, 1>, group_rows<B, 2>, group_rows<B, 3>, group_rows<B, 4>>(
        n / QK8_0, w, kGroupBlock<B>, n_w, a, a_stride, n_a, y, y_stride);
}

}  // namespace

void tile_q8_0_x16(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run<block_q8_0>(n, w, n_w, a, a_stride, n_a, y, y_stride);
}

void tile_q5_0_x16(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run<block_q5_0>(n, w, n_w, a, a_stride, n_a, y, y_stride);
}

void tile_q4_0_x16(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                   size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    run<block_q4_0>(n, w, n_w, a, a_stride, n_a, y, y_stride);
}

}  // namespace strata::quant::avx512
