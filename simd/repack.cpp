#include "simd/repack.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "simd/dispatch.h"
#include "simd/fp16.h"
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

void interleave_group(const uint8_t* rows, uint8_t* out, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t* o = out + static_cast<size_t>(i) * kGroupBlock;
        for (int r = 0; r < kInterleaveRows; ++r) {
            quant::block_q4_K b;
            std::memcpy(&b, rows + (static_cast<size_t>(r) * nb + i) * sizeof(b), sizeof(b));
            std::memcpy(o + 2 * r, &b.d, 2);
            std::memcpy(o + 32 + 2 * r, &b.dmin, 2);
            for (int k = 0; k < 3; ++k) std::memcpy(o + 64 + 64 * k + 4 * r, b.scales + 4 * k, 4);
            for (int q = 0; q < 128; q += 4) std::memcpy(o + level_offset(r, q), b.qs + q, 4);
        }
    }
}

void deinterleave_group(const uint8_t* in, uint8_t* rows, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* s = in + static_cast<size_t>(i) * kGroupBlock;
        for (int r = 0; r < kInterleaveRows; ++r) {
            quant::block_q4_K b;
            std::memcpy(&b.d, s + 2 * r, 2);
            std::memcpy(&b.dmin, s + 32 + 2 * r, 2);
            for (int k = 0; k < 3; ++k) std::memcpy(b.scales + 4 * k, s + 64 + 64 * k + 4 * r, 4);
            for (int q = 0; q < 128; q += 4) std::memcpy(b.qs + q, s + level_offset(r, q), 4);
            std::memcpy(rows + (static_cast<size_t>(r) * nb + i) * sizeof(b), &b, sizeof(b));
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

void interleave_group_q6(const uint8_t* rows, uint8_t* out, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t* o = out + static_cast<size_t>(i) * kQ6GroupBlock;
        for (int r = 0; r < kInterleaveRows; ++r) {
            quant::block_q6_K b;
            std::memcpy(&b, rows + (static_cast<size_t>(r) * nb + i) * sizeof(b), sizeof(b));
            std::memcpy(o + 2 * r, &b.d, 2);
            for (int w = 0; w < 4; ++w) std::memcpy(o + 32 + 64 * w + 4 * r, b.scales + 4 * w, 4);
            for (int q = 0; q < 128; q += 4) std::memcpy(o + q6_ql_offset(r, q), b.ql + q, 4);
            for (int q = 0; q < 64; q += 4) std::memcpy(o + q6_qh_offset(r, q), b.qh + q, 4);
        }
    }
}

void deinterleave_group_q6(const uint8_t* in, uint8_t* rows, int64_t nb) {
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* s = in + static_cast<size_t>(i) * kQ6GroupBlock;
        for (int r = 0; r < kInterleaveRows; ++r) {
            quant::block_q6_K b;
            std::memcpy(&b.d, s + 2 * r, 2);
            for (int w = 0; w < 4; ++w) std::memcpy(b.scales + 4 * w, s + 32 + 64 * w + 4 * r, 4);
            for (int q = 0; q < 128; q += 4) std::memcpy(b.ql + q, s + q6_ql_offset(r, q), 4);
            for (int q = 0; q < 64; q += 4) std::memcpy(b.qh + q, s + q6_qh_offset(r, q), 4);
            std::memcpy(rows + (static_cast<size_t>(r) * nb + i) * sizeof(b), &b, sizeof(b));
        }
    }
}

using GroupFn = void (*)(const uint8_t*, uint8_t*, int64_t);

// The type's regrouping of one group of 16 rows (`back`: the inverse), null for other types.
GroupFn group_fn(quant::Type type, bool back) {
    switch (type) {
        case quant::Type::Q4_K:
            return back ? deinterleave_group : interleave_group;
        case quant::Type::Q6_K:
            return back ? deinterleave_group_q6 : interleave_group_q6;
        default:
            return nullptr;
    }
}

void for_each_group(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows, bool back) {
    const GroupFn fn = group_fn(type, back);
    if (fn == nullptr || n_in % quant::QK_K != 0 || n_rows % kInterleaveRows != 0) return;
    const int64_t nb = n_in / quant::QK_K;
    const size_t group = quant::row_bytes(type, n_in) * kInterleaveRows;
    const int64_t n_groups = n_rows / kInterleaveRows;
#pragma omp parallel if (n_groups >= 64)
    {
        std::vector<uint8_t> tmp(group);
#pragma omp for schedule(static)
        for (int64_t g = 0; g < n_groups; ++g) {
            uint8_t* p = data + static_cast<size_t>(g) * group;
            fn(p, tmp.data(), nb);
            std::memcpy(p, tmp.data(), group);
        }
    }
}

}  // namespace

bool can_interleave(quant::Type type, int64_t n_in, int64_t n_out) {
    return dispatch::kernels()[type].tile_x16 != nullptr && n_in > 0 && n_in % quant::QK_K == 0 &&
           n_out > 0 && n_out % kInterleaveRows == 0;
}

void interleave_rows(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows) {
    for_each_group(type, data, n_in, n_rows, /*back=*/false);
}

void deinterleave_rows(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows) {
    for_each_group(type, data, n_in, n_rows, /*back=*/true);
}

void interleave_rows(quant::Type type, const uint8_t* src, uint8_t* dst, int64_t n_in,
                     int64_t n_rows) {
    const GroupFn fn = group_fn(type, /*back=*/false);
    if (fn == nullptr || n_in % quant::QK_K != 0 || n_rows % kInterleaveRows != 0) return;
    const int64_t nb = n_in / quant::QK_K;
    const size_t group = quant::row_bytes(type, n_in) * kInterleaveRows;
    const int64_t n_groups = n_rows / kInterleaveRows;
#pragma omp parallel for schedule(static) if (n_groups >= 64)
    for (int64_t g = 0; g < n_groups; ++g)
        fn(src + static_cast<size_t>(g) * group, dst + static_cast<size_t>(g) * group, nb);
}

void tile_q4_K_x16_ref(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    const int64_t nb = n / quant::QK_K;
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    for (int64_t g = 0; g < n_w / kInterleaveRows; ++g) {
        const uint8_t* group = wb + static_cast<size_t>(g) * kGroupBlock * static_cast<size_t>(nb);
        for (int64_t t = 0; t < n_a; ++t) {
            const auto* act = reinterpret_cast<const quant::block_q8_K*>(ab + t * a_stride);
            for (int r = 0; r < kInterleaveRows; ++r) {
                // llama.cpp's AVX2 order: lane k of eight sums bytes 4k..4k+3 of every 32-byte
                // chunk of qs (both nibbles); lane l of four the mins of sub-blocks 2l, 2l + 1.
                float acc[8] = {}, acc_mins[4] = {};
                for (int64_t i = 0; i < nb; ++i) {
                    const uint8_t* s = group + static_cast<size_t>(i) * kGroupBlock;
                    uint8_t packed[12];
                    for (int k = 0; k < 3; ++k)
                        std::memcpy(packed + 4 * k, s + 64 + 64 * k + 4 * r, 4);
                    uint8_t sc[8], m[8];
                    for (int j = 0; j < 8; ++j)
                        quant::ref::unpack_scale_min_k4(j, packed, &sc[j], &m[j]);
                    uint16_t d16, dmin16;
                    std::memcpy(&d16, s + 2 * r, 2);
                    std::memcpy(&dmin16, s + 32 + 2 * r, 2);
                    const float dd = fp16_to_fp32(d16) * act[i].d;
                    const float dm = fp16_to_fp32(dmin16) * act[i].d;
                    for (int k = 0; k < 8; ++k) {
                        int32_t sumi = 0;
                        for (int c = 0; c < 4; ++c)
                            for (int e = 0; e < 4; ++e) {
                                const int q = 32 * c + 4 * k + e;  // byte of qs
                                const uint8_t byte = s[level_offset(r, q)];
                                sumi += sc[2 * c] * (byte & 0x0F) * act[i].qs[64 * c + 4 * k + e];
                                sumi += sc[2 * c + 1] * (byte >> 4) *
                                        act[i].qs[64 * c + 32 + 4 * k + e];
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
                const float h = ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
                                ((acc[1] + acc[5]) + (acc[3] + acc[7]));
                const float mm = (acc_mins[0] + acc_mins[2]) + (acc_mins[1] + acc_mins[3]);
                y[t * y_stride + g * kInterleaveRows + r] = h + mm;
            }
        }
    }
}

void tile_q6_K_x16_ref(int64_t n, const void* w, size_t /*w_stride*/, int64_t n_w, const void* a,
                       size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    const int64_t nb = n / quant::QK_K;
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    for (int64_t g = 0; g < n_w / kInterleaveRows; ++g) {
        const uint8_t* group =
            wb + static_cast<size_t>(g) * kQ6GroupBlock * static_cast<size_t>(nb);
        for (int64_t t = 0; t < n_a; ++t) {
            const auto* act = reinterpret_cast<const quant::block_q8_K*>(ab + t * a_stride);
            for (int r = 0; r < kInterleaveRows; ++r) {
                // llama.cpp's AVX2 order: lane k of eight sums elements 32m + 4k .. +3 of each
                // half (m < 4) and subtracts 32 (bsum 2k · scale 2k + bsum 2k+1 · scale 2k+1).
                float acc[8] = {};
                for (int64_t i = 0; i < nb; ++i) {
                    const uint8_t* s = group + static_cast<size_t>(i) * kQ6GroupBlock;
                    int8_t sc[16];
                    for (int k = 0; k < 4; ++k) std::memcpy(sc + 4 * k, s + 32 + 64 * k + 4 * r, 4);
                    uint16_t d16;
                    std::memcpy(&d16, s + 2 * r, 2);
                    const float dd = fp16_to_fp32(d16) * act[i].d;
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
                y[t * y_stride + g * kInterleaveRows + r] =
                    ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
                    ((acc[1] + acc[5]) + (acc[3] + acc[7]));
            }
        }
    }
}

}  // namespace strata::simd
