// Weight quantizers of the K-quants: what `llama-quantize` writes without an importance matrix.
//
// Each super-block of 256 is cut into sub-blocks (16 of 16 for Q2_K / Q3_K / Q6_K, 8 of 32 for
// Q4_K / Q5_K). A sub-block gets its own float scale (and min) by a small search that minimises
// a weighted squared (or absolute) error; the sub-block scales are then themselves quantized
// against one f16 super-block scale, and finally every weight is re-rounded against the scale
// it will really be decoded with. The searches follow ggml's (make_qx_quants, make_q3_quants,
// make_qkx2_quants) operation for operation, in float, so that ties break the same way and the
// files we write decode to the same values as llama-quantize's (on the golden models they are
// byte-identical). The packing is the inverse of kquants_levels.h, which documents the layouts.
#include <cmath>
#include <cstring>

#include "simd/quant.h"
#include "simd/ref/common.h"
#include "simd/ref/ref.h"

namespace strata::quant::ref {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // below this a group counts as all zero

// The value of largest magnitude, with its sign (the first one on ties).
float signed_max(const float* x, int n, float* amax) {
    float max = 0.0f;
    *amax = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > *amax) {
            *amax = ax;
            max = x[i];
        }
    }
    return max;
}

// Symmetric levels -nmax .. nmax-1 (stored + nmax in L) with weights x²: tries the scales that
// map the extreme to -(nmax + 0.1·k), k = -9..9, and keeps the one whose least-squares refit
// explains most of the weighted energy (maximal Σwxl² / Σwl²). Returns the refit scale. This is
// ggml's make_qx_quants with rmse_type 1 and no importance weights.
float fit_symmetric_x2(int n, int nmax, const float* x, int8_t* L) {
    float amax;
    const float max = signed_max(x, n, &amax);
    if (amax < kGroupMaxEps) {
        std::memset(L, 0, static_cast<size_t>(n));
        return 0.0f;
    }
    auto sums = [&](float iscale, float* sumlx, float* suml2) {
        *sumlx = *suml2 = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            *sumlx += w * x[i] * static_cast<float>(l);
            *suml2 += w * static_cast<float>(l) * static_cast<float>(l);
        }
    };
    auto assign = [&](float iscale) {
        for (int i = 0; i < n; ++i)
            L[i] =
                static_cast<int8_t>(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    };

    float iscale = static_cast<float>(-nmax) / max;
    float sumlx, suml2;
    sums(iscale, &sumlx, &suml2);
    assign(iscale);
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int k = -9; k <= 9; ++k) {
        if (k == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / max;
        sums(iscale, &sumlx, &suml2);
        // Compare Σxl²/Σl² without dividing: sumlx²/suml2 > best.
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            assign(iscale);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Symmetric levels -nmax .. nmax-1 (stored + nmax in L) with weights x², refined by coordinate
// descent: each level in turn moves to the value that is optimal given all others, when that
// improves the fit, for at most five sweeps. ggml's make_q3_quants with do_rmse.
float fit_symmetric_descent(int n, int nmax, const float* x, int8_t* L) {
    float amax;
    const float max = signed_max(x, n, &amax);
    if (amax < kGroupMaxEps) {
        std::memset(L, 0, static_cast<size_t>(n));
        return 0.0f;
    }
    const float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    for (int sweep = 0; sweep < 5; ++sweep) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
            if (slx <= 0.0f) continue;
            float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
            const int l = clamp_int(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (l == L[i]) continue;
            slx += w * x[i] * static_cast<float>(l);
            sl2 += w * static_cast<float>(l) * static_cast<float>(l);
            // Keep the move when slx²/sl2 > sumlx²/suml2 (more energy explained).
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = static_cast<int8_t>(l);
                sumlx = slx;
                suml2 = sl2;
                ++changed;
            }
        }
        if (changed == 0) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Asymmetric levels 0 .. nmax for x ≈ scale·l - min (min ≥ 0 is returned in *the_min): starting
// from the min/max fit, tries nstep + 1 stretched grids (nmax + rmin + rdelta·k levels over the
// range), refits scale and min by weighted least squares on each, and keeps the grid with the
// smallest weighted error (squared, or absolute when use_mad). ggml's make_qkx2_quants.
float fit_affine(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                 uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0.0f) min = 0.0f;  // the offset only ever lowers the grid
    if (max == min) {
        std::memset(L, 0, static_cast<size_t>(n));
        *the_min = -min;
        return 0.0f;
    }
    auto error = [&](const uint8_t* levels, float scale, float offset) {
        float err = 0.0f;
        for (int i = 0; i < n; ++i) {
            float diff = scale * static_cast<float>(levels[i]) + offset - x[i];
            diff = use_mad ? std::fabs(diff) : diff * diff;
            err += weights[i] * diff;
        }
        return err;
    };

    float iscale = static_cast<float>(nmax) / (max - min);
    float scale = 1.0f / iscale;
    for (int i = 0; i < n; ++i)
        L[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax));
    float best_error = error(L, scale, min);

    for (int k = 0; k <= nstep; ++k) {
        iscale = (rmin + rdelta * static_cast<float>(k) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = static_cast<uint8_t>(l);
            const float wl = weights[i] * static_cast<float>(l);
            sum_l += wl;
            sum_l2 += wl * static_cast<float>(l);
            sum_xl += wl * x[i];
        }
        // Normal equations of min over (scale, offset) of Σw(scale·l + offset - x)².
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0.0f)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0.0f) {  // a positive offset is not representable: refit the scale alone
            this_min = 0.0f;
            this_scale = sum_xl / sum_l2;
        }
        const float err = error(Laux, this_scale, this_min);
        if (err < best_error) {
            std::memcpy(L, Laux, static_cast<size_t>(n));
            best_error = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

// Packs 256 two-bit levels: level e goes to bits 2p..2p+1 of qs[32h + l], e = 128h + 32p + l.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            const uint8_t* s = L + 128 * h + l;
            qs[32 * h + l] =
                static_cast<uint8_t>(s[0] | (s[32] << 2) | (s[64] << 4) | (s[96] << 6));
        }
}

// Q4_K / Q5_K scale bytes (see unpack_scale_min_k4 in common.h for the layout).
void pack_scales_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* packed) {
    for (int j = 0; j < 4; ++j) {
        packed[j] = ls[j];
        packed[j + 4] = lm[j];
    }
    for (int j = 4; j < 8; ++j) {
        packed[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
        packed[j - 4] = static_cast<uint8_t>(packed[j - 4] | ((ls[j] >> 4) << 6));
        packed[j] = static_cast<uint8_t>(packed[j] | ((lm[j] >> 4) << 6));
    }
}

// Sub-block scales and mins of Q4_K / Q5_K: weights |x| + rms(x) favour the large values a
// little; the eight scales and eight mins are then coded in 6 bits against their maxima.
void quantize_k4_scales(const float* x, int nmax, float rmin, int nstep, uint8_t* L,
                        uint16_t* d_out, uint16_t* dmin_out, uint8_t* packed) {
    float scales[8], mins[8], weights[32];
    uint8_t Laux[32];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
        const float* xs = x + 32 * j;
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32.0f);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
        scales[j] =
            fit_affine(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        ls[j] = static_cast<uint8_t>(clamp_int(nearest_int(inv_scale * scales[j]), 0, 63));
        lm[j] = static_cast<uint8_t>(clamp_int(nearest_int(inv_min * mins[j]), 0, 63));
    }
    pack_scales_k4(ls, lm, packed);
    *d_out = to_f16(max_scale / 63.0f);
    *dmin_out = to_f16(max_min / 63.0f);
}

// Re-rounds each weight against the scale and min it will be decoded with. A sub-block whose
// coded scale is zero keeps the levels of its float fit (they decode to -min anyway).
void requantize_k4(const float* x, int nmax, uint16_t d16, uint16_t dmin16, const uint8_t* packed,
                   uint8_t* L) {
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        unpack_scale_min_k4(j, packed, &sc, &m);
        const float d = f16(d16) * static_cast<float>(sc);
        if (d == 0.0f) continue;
        const float dm = f16(dmin16) * static_cast<float>(m);
        for (int l = 0; l < 32; ++l)
            L[32 * j + l] =
                static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + l] + dm) / d), 0, nmax));
    }
}

}  // namespace

void quantize_q2_K(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q2_K*>(dst);
    uint8_t L[QK_K], Laux[16];
    float weights[16], scales[16], mins[16];
    for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
        float max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(src[16 * j + l]);
            scales[j] = fit_affine(16, 3, src + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                   0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        // Scales in the low nibble, mins in the high nibble, both 4-bit against their maxima.
        std::memset(b[i].scales, 0, sizeof b[i].scales);
        b[i].d = to_f16(0.0f);
        b[i].dmin = to_f16(0.0f);
        if (max_scale > 0.0f) {
            const float iscale = 15.0f / max_scale;
            for (int j = 0; j < 16; ++j)
                b[i].scales[j] =
                    static_cast<uint8_t>(clamp_int(nearest_int(iscale * scales[j]), 0, 15));
            b[i].d = to_f16(max_scale / 15.0f);
        }
        if (max_min > 0.0f) {
            const float iscale = 15.0f / max_min;
            for (int j = 0; j < 16; ++j) {
                const int l = clamp_int(nearest_int(iscale * mins[j]), 0, 15);
                b[i].scales[j] = static_cast<uint8_t>(b[i].scales[j] | (l << 4));
            }
            b[i].dmin = to_f16(max_min / 15.0f);
        }
        for (int j = 0; j < 16; ++j) {
            const float d = f16(b[i].d) * static_cast<float>(b[i].scales[j] & 0xF);
            if (d == 0.0f) continue;
            const float dm = f16(b[i].dmin) * static_cast<float>(b[i].scales[j] >> 4);
            for (int l = 0; l < 16; ++l)
                L[16 * j + l] =
                    static_cast<uint8_t>(clamp_int(nearest_int((src[16 * j + l] + dm) / d), 0, 3));
        }
        pack_2bit(L, b[i].qs);
    }
}

void quantize_q3_K(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q3_K*>(dst);
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
        float max_scale = 0.0f, amax = 0.0f;
        for (int j = 0; j < 16; ++j) {
            scales[j] = fit_symmetric_descent(16, 4, src + 16 * j, L + 16 * j);
            if (std::fabs(scales[j]) > amax) {
                amax = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        // 6-bit signed sub-block scales, stored + 32: low nibbles in bytes 0..7, top bit pairs
        // in bytes 8..11 (see unpack_scale_q3 in common.h).
        std::memset(b[i].scales, 0, sizeof b[i].scales);
        b[i].d = to_f16(0.0f);
        if (max_scale != 0.0f) {
            const float iscale = -32.0f / max_scale;
            for (int j = 0; j < 16; ++j) {
                const int l = clamp_int(nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8)
                    b[i].scales[j] = static_cast<uint8_t>(l & 0xF);
                else
                    b[i].scales[j - 8] =
                        static_cast<uint8_t>(b[i].scales[j - 8] | ((l & 0xF) << 4));
                b[i].scales[8 + j % 4] =
                    static_cast<uint8_t>(b[i].scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
            }
            b[i].d = to_f16(1.0f / iscale);
        }
        for (int j = 0; j < 16; ++j) {
            const float d = f16(b[i].d) * static_cast<float>(unpack_scale_q3(j, b[i].scales));
            if (d == 0.0f) continue;
            for (int l = 0; l < 16; ++l)
                L[16 * j + l] =
                    static_cast<int8_t>(clamp_int(nearest_int(src[16 * j + l] / d), -4, 3) + 4);
        }
        // Levels 0..7: bit 2 goes to hmask (element e → bit e / 32 of hmask[e % 32]), the low two
        // bits to the 2-bit planes.
        uint8_t low[QK_K];
        std::memset(b[i].hmask, 0, sizeof b[i].hmask);
        for (int e = 0; e < QK_K; ++e) {
            int level = L[e];
            if (level > 3) {
                b[i].hmask[e % 32] = static_cast<uint8_t>(b[i].hmask[e % 32] | (1u << (e / 32)));
                level -= 4;
            }
            low[e] = static_cast<uint8_t>(level);
        }
        pack_2bit(low, b[i].qs);
    }
}

void quantize_q4_K(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q4_K*>(dst);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
        quantize_k4_scales(src, 15, -1.0f, 20, L, &b[i].d, &b[i].dmin, b[i].scales);
        requantize_k4(src, 15, b[i].d, b[i].dmin, b[i].scales, L);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l)
                b[i].qs[32 * c + l] =
                    static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

void quantize_q5_K(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q5_K*>(dst);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
        quantize_k4_scales(src, 31, -0.5f, 15, L, &b[i].d, &b[i].dmin, b[i].scales);
        requantize_k4(src, 31, b[i].d, b[i].dmin, b[i].scales, L);
        // Element 64c + 32s + l: low nibble s of qs[32c + l], fifth bit 2c + s of qh[l].
        std::memset(b[i].qh, 0, sizeof b[i].qh);
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l) {
                const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                b[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
                b[i].qh[l] = static_cast<uint8_t>(b[i].qh[l] | ((lo >> 4) << (2 * c)) |
                                                  ((hi >> 4) << (2 * c + 1)));
            }
    }
}

void quantize_q6_K(const float* src, void* dst, int64_t n) {
    auto* b = static_cast<block_q6_K*>(dst);
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; ++i, src += QK_K) {
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int j = 0; j < 16; ++j) {
            scales[j] = fit_symmetric_x2(16, 32, src + 16 * j, L + 16 * j);
            if (std::fabs(scales[j]) > max_abs_scale) {
                max_abs_scale = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < kGroupMaxEps) {
            std::memset(&b[i], 0, sizeof(block_q6_K));
            continue;
        }
        // int8 sub-block scales: the largest maps to -128 (clamped to 127 on the other side).
        const float iscale = -128.0f / max_scale;
        b[i].d = to_f16(1.0f / iscale);
        for (int j = 0; j < 16; ++j)
            b[i].scales[j] =
                static_cast<int8_t>(clamp_int(nearest_int(iscale * scales[j]), -128, 127));
        for (int j = 0; j < 16; ++j) {
            const float d = f16(b[i].d) * static_cast<float>(b[i].scales[j]);
            if (d == 0.0f) continue;
            for (int l = 0; l < 16; ++l)
                L[16 * j + l] =
                    static_cast<int8_t>(clamp_int(nearest_int(src[16 * j + l] / d), -32, 31) + 32);
        }
        // Element 128h + 32p + l: low nibble in ql[64h + l + 32(p & 1)] (planes 2, 3 in the high
        // nibble), top two bits in bits 2p..2p+1 of qh[32h + l].
        for (int h = 0; h < 2; ++h)
            for (int l = 0; l < 32; ++l) {
                const int8_t* q = L + 128 * h + l;
                b[i].ql[64 * h + l] = static_cast<uint8_t>((q[0] & 0xF) | ((q[64] & 0xF) << 4));
                b[i].ql[64 * h + l + 32] =
                    static_cast<uint8_t>((q[32] & 0xF) | ((q[96] & 0xF) << 4));
                b[i].qh[32 * h + l] = static_cast<uint8_t>(
                    (q[0] >> 4) | ((q[32] >> 4) << 2) | ((q[64] >> 4) << 4) | ((q[96] >> 4) << 6));
            }
    }
}

}  // namespace strata::quant::ref
