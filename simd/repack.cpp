#include "simd/repack.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "simd/dispatch.h"
#include "simd/fp16.h"
#include "simd/ref/common.h"

namespace strata::simd {
namespace {

constexpr size_t kGroupBlock = kInterleaveRows * sizeof(quant::block_q4_K);  // 2,304

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

template <typename Fn>
void for_each_group(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows, Fn fn) {
    if (type != quant::Type::Q4_K || n_in % quant::QK_K != 0 || n_rows % kInterleaveRows != 0)
        return;
    const int64_t nb = n_in / quant::QK_K;
    const size_t group = kGroupBlock * static_cast<size_t>(nb);
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
    for_each_group(type, data, n_in, n_rows, interleave_group);
}

void deinterleave_rows(quant::Type type, uint8_t* data, int64_t n_in, int64_t n_rows) {
    for_each_group(type, data, n_in, n_rows, deinterleave_group);
}

void interleave_rows(quant::Type type, const uint8_t* src, uint8_t* dst, int64_t n_in,
                     int64_t n_rows) {
    if (type != quant::Type::Q4_K || n_in % quant::QK_K != 0 || n_rows % kInterleaveRows != 0)
        return;
    const int64_t nb = n_in / quant::QK_K;
    const size_t group = kGroupBlock * static_cast<size_t>(nb);
    const int64_t n_groups = n_rows / kInterleaveRows;
#pragma omp parallel for schedule(static) if (n_groups >= 64)
    for (int64_t g = 0; g < n_groups; ++g)
        interleave_group(src + static_cast<size_t>(g) * group, dst + static_cast<size_t>(g) * group,
                         nb);
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

}  // namespace strata::simd
