#include "simd/repack.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "simd/dispatch.h"
#include "simd/fp16.h"
#include "simd/parallel.h"
#include "simd/ref/common.h"

namespace strata::simd {
namespace {

constexpr size_t kGroupBlock = kInterleaveRows * sizeof(quant::block_q4_K);    // 2,304
constexpr size_t kQ6GroupBlock = kInterleaveRows * sizeof(quant::block_q6_K);  // 3,360

// Byte offset, within block i's 2,304 bytes, of row r's qs[q] (q < 128).
constexpr size_t level_offset(int r, int q) {
    const int c = q / 32, g = (q % 32) / 4;
    return 256 + 64 * static_cast<size_t>(8 * c + g) + 4 * static_cast<size_t>(r) +
           static_cast<size_t>(q % 4);
}

// One field of n bytes, at `row` in the rows' bytes and `group` in the interleaved bytes,
// copied from `from` to `to`: into the group when interleaving, back when not (kBack).
template <bool kBack>
inline void move(const uint8_t* from, uint8_t* to, size_t row, size_t group, size_t n) {
    if constexpr (kBack)
        std::memcpy(to + row, from + group, n);
    else
        std::memcpy(to + group, from + row, n);
}

// Blocks of sixteen rows from one layout to the other: rows in the file's order on one side,
// interleaved on the other.
template <bool kBack>
void regroup_q4_K(const uint8_t* from, uint8_t* to, int64_t nb) {
    using B = quant::block_q4_K;
    for (int64_t i = 0; i < nb; ++i) {
        const size_t g = static_cast<size_t>(i) * kGroupBlock;
        for (int r = 0; r < kInterleaveRows; ++r) {
            const size_t b = (static_cast<size_t>(r) * nb + i) * sizeof(B);
            move<kBack>(from, to, b + offsetof(B, d), g + 2 * r, 2);
            move<kBack>(from, to, b + offsetof(B, dmin), g + 32 + 2 * r, 2);
            for (int k = 0; k < 3; ++k)
                move<kBack>(from, to, b + offsetof(B, scales) + 4 * k, g + 64 + 64 * k + 4 * r, 4);
            for (int q = 0; q < 128; q += 4)
                move<kBack>(from, to, b + offsetof(B, qs) + q, g + level_offset(r, q), 4);
        }
    }
}

// Q6_K, block i's 3,360 bytes: d of rows 0..15 at [0, 32); scale word w (scales 4w..4w+3) of
// row r at 32 + 64 w + 4 r; ql[64 h + 4 g .. +3] (h < 2, g < 16) of row r at
// 288 + 64 (16 h + g) + 4 r; qh[32 h + 4 g .. +3] (g < 8) of row r at 2336 + 64 (8 h + g) + 4 r.
constexpr size_t q6_ql_offset(int r, int q) {  // q < 128
    return 288 + 64 * static_cast<size_t>(q / 4) + 4 * static_cast<size_t>(r) +
           static_cast<size_t>(q % 4);
}
constexpr size_t q6_qh_offset(int r, int q) {  // q < 64
    return 2336 + 64 * static_cast<size_t>(q / 4) + 4 * static_cast<size_t>(r) +
           static_cast<size_t>(q % 4);
}

template <bool kBack>
void regroup_q6_K(const uint8_t* from, uint8_t* to, int64_t nb) {
    using B = quant::block_q6_K;
    for (int64_t i = 0; i < nb; ++i) {
        const size_t g = static_cast<size_t>(i) * kQ6GroupBlock;
        for (int r = 0; r < kInterleaveRows; ++r) {
            const size_t b = (static_cast<size_t>(r) * nb + i) * sizeof(B);
            move<kBack>(from, to, b + offsetof(B, d), g + 2 * r, 2);
            for (int w = 0; w < 4; ++w)
                move<kBack>(from, to, b + offsetof(B, scales) + 4 * w, g + 32 + 64 * w + 4 * r, 4);
            for (int q = 0; q < 128; q += 4)
                move<kBack>(from, to, b + offsetof(B, ql) + q, g + q6_ql_offset(r, q), 4);
            for (int q = 0; q < 64; q += 4)
                move<kBack>(from, to, b + offsetof(B, qh) + q, g + q6_qh_offset(r, q), 4);
        }
    }
}

// The 32-element formats: d of rows 0..15 at [0, 32); Q5_0's qh of row r at 32 + 4 r; the quants
// in groups of four bytes, qs[4 g .. +3] of row r at `levels` + 64 g + 4 r.
template <typename B>
constexpr size_t legacy_levels() {
    return std::is_same_v<B, quant::block_q5_0> ? 96 : 32;
}

template <typename B, bool kBack>
void regroup_legacy(const uint8_t* from, uint8_t* to, int64_t nb) {
    constexpr size_t kGroup = kInterleaveRows * sizeof(B);
    for (int64_t i = 0; i < nb; ++i) {
        const size_t g = static_cast<size_t>(i) * kGroup;
        for (int r = 0; r < kInterleaveRows; ++r) {
            const size_t b = (static_cast<size_t>(r) * nb + i) * sizeof(B);
            move<kBack>(from, to, b + offsetof(B, d), g + 2 * r, 2);
            if constexpr (std::is_same_v<B, quant::block_q5_0>)
                move<kBack>(from, to, b + offsetof(B, qh), g + 32 + 4 * r, 4);
            for (size_t q = 0; q < sizeof(B::qs); q += 4)
                move<kBack>(from, to, b + offsetof(B, qs) + q,
                            g + legacy_levels<B>() + 16 * q + 4 * static_cast<size_t>(r), 4);
        }
    }
}

// The type's regrouping of one group of sixteen rows from `from` into `to` (`back`: from the
// interleaved layout to rows), null for types without a layout.
using GroupFn = void (*)(const uint8_t* from, uint8_t* to, int64_t nb);

GroupFn group_fn(quant::Type type, bool back) {
    switch (type) {
        case quant::Type::Q4_K:
            return back ? regroup_q4_K<true> : regroup_q4_K<false>;
        case quant::Type::Q6_K:
            return back ? regroup_q6_K<true> : regroup_q6_K<false>;
        case quant::Type::Q8_0:
            return back ? regroup_legacy<quant::block_q8_0, true>
                        : regroup_legacy<quant::block_q8_0, false>;
        case quant::Type::Q5_0:
            return back ? regroup_legacy<quant::block_q5_0, true>
                        : regroup_legacy<quant::block_q5_0, false>;
        case quant::Type::Q4_0:
            return back ? regroup_legacy<quant::block_q4_0, true>
                        : regroup_legacy<quant::block_q4_0, false>;
        default:
            return nullptr;
    }
}

// Sixteen-row groups of a matrix: the regrouping of one, bytes per group, how many. Null fn
// when the type has no layout or the shape does not divide.
struct Groups {
    GroupFn fn = nullptr;
    dispatch::InterleaveFn fast = nullptr;  // into the layout, where an ISA kernel exists
    int64_t nb = 0;
    size_t bytes = 0;
    int64_t count = 0;

    void run(const uint8_t* from, uint8_t* to) const {
        if (fast != nullptr && fast(from, to, nb)) return;
        fn(from, to, nb);
    }
};

Groups groups_of(quant::Type type, int64_t n_in, int64_t n_rows, bool back) {
    Groups g;
    const int64_t block = quant::traits(type).block_size;
    if (block == 0 || n_in % block != 0 || n_rows % kInterleaveRows != 0) return g;
    g.fn = group_fn(type, back);
    if (!back) g.fast = dispatch::kernels()[type].interleave_x16;
    g.nb = n_in / block;
    g.bytes = quant::row_bytes(type, n_in) * kInterleaveRows;
    g.count = n_rows / kInterleaveRows;
    return g;
}

// Groups of sixteen rows are independent: a job of one task per group, on the pass's team when
// called inside a forward pass (an expert cache slot regrouped before its product) or an OpenMP
// loop of its own at load.
void regroup_in_place(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows, bool back) {
    const Groups g = groups_of(type, n_in, n_rows, back);
    if (g.fn == nullptr) return;
    parallel_for(g.count, g.count * static_cast<int64_t>(g.bytes), [&](int64_t k) {
        thread_local std::vector<uint8_t> tmp;
        tmp.resize(g.bytes);
        uint8_t* p = data + static_cast<size_t>(k) * g.bytes;
        g.run(p, tmp.data());
        std::memcpy(p, tmp.data(), g.bytes);
    });
}

void regroup_copy(quant::Type type, const uint8_t* src, uint8_t* dst, int64_t n_in, int64_t n_rows,
                  bool back) {
    const Groups g = groups_of(type, n_in, n_rows, back);
    if (g.fn == nullptr) return;
    parallel_for(g.count, g.count * static_cast<int64_t>(g.bytes), [&](int64_t k) {
        g.run(src + static_cast<size_t>(k) * g.bytes, dst + static_cast<size_t>(k) * g.bytes);
    });
}

// y[t * y_stride + 16 g + r] = row(group, act, r) for every group g of sixteen interleaved rows
// (`group` its first byte, nb blocks of group_block bytes), activation row t (`act` its blocks,
// of type Act) and row r of the group: the loops the scalar twins share.
template <typename Act, class Row>
void for_each_group_row(int64_t nb, size_t group_block, const void* w, int64_t n_w, const void* a,
                        size_t a_stride, int64_t n_a, float* y, int64_t y_stride, Row&& row) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    for (int64_t g = 0; g < n_w / kInterleaveRows; ++g) {
        const uint8_t* group = wb + static_cast<size_t>(g) * group_block * static_cast<size_t>(nb);
        for (int64_t t = 0; t < n_a; ++t) {
            const auto* act = reinterpret_cast<const Act*>(ab + t * a_stride);
            for (int r = 0; r < kInterleaveRows; ++r)
                y[t * y_stride + g * kInterleaveRows + r] = row(group, act, r);
        }
    }
}

// Row r's F16 at byte `at` of a group block (16 of them side by side: d, or Q4_K's dmin).
float row_f16(const uint8_t* block, size_t at, int r) {
    uint16_t h;
    std::memcpy(&h, block + at + 2 * static_cast<size_t>(r), 2);
    return fp16_to_fp32(h);
}

}  // namespace

bool can_interleave(quant::Type type, int64_t n_in, int64_t n_out) {
    const int64_t block = quant::traits(type).block_size;
    return dispatch::kernels()[type].tile_x16 != nullptr && block > 0 && n_in > 0 &&
           n_in % block == 0 && n_out > 0 && n_out % kInterleaveRows == 0;
}

void interleave_rows(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows) {
    regroup_in_place(type, data, n_in, n_rows, /*back=*/false);
}

void deinterleave_rows(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows) {
    regroup_in_place(type, data, n_in, n_rows, /*back=*/true);
}

void interleave_rows(quant::Type type, const uint8_t* src, uint8_t* dst, int64_t n_in,
                     int64_t n_rows) {
    regroup_copy(type, src, dst, n_in, n_rows, /*back=*/false);
}

void deinterleave_rows(quant::Type type, const uint8_t* src, uint8_t* dst, int64_t n_in,
                       int64_t n_rows) {
    regroup_copy(type, src, dst, n_in, n_rows, /*back=*/true);
}

void interleave_group_ref(quant::Type type, const uint8_t* rows, uint8_t* group, int64_t nb) {
    if (const GroupFn fn = group_fn(type, /*back=*/false)) fn(rows, group, nb);
}

void tile_q4_K_x16_ref(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    const int64_t nb = n / quant::QK_K;
    for_each_group_row<quant::block_q8_K>(
        nb, kGroupBlock, w, n_w, a, a_stride, n_a, y, y_stride,
        [nb](const uint8_t* group, const quant::block_q8_K* act, int r) {
            // llama.cpp's AVX2 order: lane k of eight sums bytes 4k..4k+3 of every 32-byte
            // chunk of qs (both nibbles); lane l of four the mins of sub-blocks 2l, 2l + 1.
            float acc[8] = {}, acc_mins[4] = {};
            for (int64_t i = 0; i < nb; ++i) {
                const uint8_t* s = group + static_cast<size_t>(i) * kGroupBlock;
                uint8_t packed[12];
                for (int k = 0; k < 3; ++k) std::memcpy(packed + 4 * k, s + 64 + 64 * k + 4 * r, 4);
                uint8_t sc[8], m[8];
                for (int j = 0; j < 8; ++j)
                    quant::ref::unpack_scale_min_k4(j, packed, &sc[j], &m[j]);
                const float dd = row_f16(s, 0, r) * act[i].d;
                const float dm = row_f16(s, 32, r) * act[i].d;
                for (int k = 0; k < 8; ++k) {
                    int32_t sumi = 0;
                    for (int c = 0; c < 4; ++c)
                        for (int e = 0; e < 4; ++e) {
                            const int q = 32 * c + 4 * k + e;  // byte of qs
                            const uint8_t byte = s[level_offset(r, q)];
                            sumi += sc[2 * c] * (byte & 0x0F) * act[i].qs[64 * c + 4 * k + e];
                            sumi +=
                                sc[2 * c + 1] * (byte >> 4) * act[i].qs[64 * c + 32 + 4 * k + e];
                        }
                    acc[k] = std::fma(dd, static_cast<float>(sumi), acc[k]);
                }
                for (int l = 0; l < 4; ++l) {
                    int32_t msum = 0;
                    for (int j = 2 * l; j < 2 * l + 2; ++j)
                        msum += m[j] * (act[i].bsums[2 * j] + act[i].bsums[2 * j + 1]);
                    acc_mins[l] = std::fma(-dm, static_cast<float>(msum), acc_mins[l]);
                }
            }
            const float mm = (acc_mins[0] + acc_mins[2]) + (acc_mins[1] + acc_mins[3]);
            return quant::ref::hsum_lanes8(acc) + mm;
        });
}

void tile_q6_K_x16_ref(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    const int64_t nb = n / quant::QK_K;
    for_each_group_row<quant::block_q8_K>(
        nb, kQ6GroupBlock, w, n_w, a, a_stride, n_a, y, y_stride,
        [nb](const uint8_t* group, const quant::block_q8_K* act, int r) {
            // llama.cpp's AVX2 order: lane k of eight sums elements 32m + 4k .. +3 of each
            // half (m < 4) and subtracts 32 (bsum 2k · scale 2k + bsum 2k+1 · scale 2k+1).
            float acc[8] = {};
            for (int64_t i = 0; i < nb; ++i) {
                const uint8_t* s = group + static_cast<size_t>(i) * kQ6GroupBlock;
                int8_t sc[16];
                for (int k = 0; k < 4; ++k) std::memcpy(sc + 4 * k, s + 32 + 64 * k + 4 * r, 4);
                const float dd = row_f16(s, 0, r) * act[i].d;
                for (int k = 0; k < 8; ++k) {
                    int32_t sumi = -32 * (act[i].bsums[2 * k] * sc[2 * k] +
                                          act[i].bsums[2 * k + 1] * sc[2 * k + 1]);
                    for (int h = 0; h < 2; ++h)
                        for (int m = 0; m < 4; ++m)
                            for (int e = 0; e < 4; ++e) {
                                const int l = 32 * m + 4 * k + e;  // element of the half
                                const uint8_t ql = s[q6_ql_offset(r, 64 * h + l % 64)];
                                const uint8_t qh = s[q6_qh_offset(r, 32 * h + l % 32)];
                                const int u = (l < 64 ? ql & 0x0F : ql >> 4) |
                                              (((qh >> (2 * (l / 32))) & 3) << 4);
                                sumi += sc[(128 * h + l) / 16] * u * act[i].qs[128 * h + l];
                            }
                    acc[k] = std::fma(dd, static_cast<float>(sumi), acc[k]);
                }
            }
            return quant::ref::hsum_lanes8(acc);
        });
}

namespace {

// The 32-element formats' twin: per row eight float lanes, lane k the exact sum of elements
// 4k..4k+3 of each block (levels · activation quants), fused with d·d_a in block order.
template <typename B>
void tile_legacy_x16_ref(int64_t n, const void* w, int64_t n_w, const void* a, size_t a_stride,
                         int64_t n_a, float* y, int64_t y_stride) {
    constexpr size_t kGroup = kInterleaveRows * sizeof(B);
    const int64_t nb = n / 32;
    for_each_group_row<quant::block_q8_0>(
        nb, kGroup, w, n_w, a, a_stride, n_a, y, y_stride,
        [nb](const uint8_t* group, const quant::block_q8_0* act, int r) {
            float acc[8] = {};
            for (int64_t i = 0; i < nb; ++i) {
                const uint8_t* s = group + static_cast<size_t>(i) * kGroup;
                uint32_t qh = 0;
                if constexpr (std::is_same_v<B, quant::block_q5_0>)
                    std::memcpy(&qh, s + 32 + 4 * r, 4);
                // Level of element j (0..31).
                const auto level = [&](int j) -> int {
                    if constexpr (std::is_same_v<B, quant::block_q8_0>) {
                        return static_cast<int8_t>(s[32 + 64 * (j / 4) + 4 * r + j % 4]);
                    } else {
                        const uint8_t byte =
                            s[legacy_levels<B>() + 64 * ((j % 16) / 4) + 4 * r + j % 4];
                        const int nibble = j < 16 ? byte & 0x0F : byte >> 4;
                        if constexpr (std::is_same_v<B, quant::block_q5_0>)
                            return (nibble | static_cast<int>(((qh >> j) & 1) << 4)) - 16;
                        else
                            return nibble - 8;
                    }
                };
                const float dd = row_f16(s, 0, r) * fp16_to_fp32(act[i].d);
                for (int k = 0; k < 8; ++k) {
                    int32_t sumi = 0;
                    for (int e = 0; e < 4; ++e) sumi += level(4 * k + e) * act[i].qs[4 * k + e];
                    acc[k] = std::fma(dd, static_cast<float>(sumi), acc[k]);
                }
            }
            return quant::ref::hsum_lanes8(acc);
        });
}

}  // namespace

void tile_q8_0_x16_ref(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    tile_legacy_x16_ref<quant::block_q8_0>(n, w, n_w, a, a_stride, n_a, y, y_stride);
}

void tile_q5_0_x16_ref(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    tile_legacy_x16_ref<quant::block_q5_0>(n, w, n_w, a, a_stride, n_a, y, y_stride);
}

void tile_q4_0_x16_ref(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    tile_legacy_x16_ref<quant::block_q4_0>(n, w, n_w, a, a_stride, n_a, y, y_stride);
}

}  // namespace strata::simd
