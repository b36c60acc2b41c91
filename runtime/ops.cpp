// Row operations, rounded as ggml rounds them (see ops.h).
#include "runtime/ops.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "simd/float_order.h"

namespace strata::ops {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float scale = 1.0f / std::sqrt(mean + eps);
    // Two roundings, like the reference's rms_norm then mul: (x · scale) · w.
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
    // The reference's vector exp on whole groups of 16, libm's on the rest.
    const int64_t vec = n & ~int64_t{15};
    constexpr int64_t kChunk = 256;
    float e[kChunk];
    for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
        const int64_t m = std::min(kChunk, n - i0);
        const int64_t m_vec = std::clamp(vec - i0, int64_t{0}, m);
        for (int64_t k = 0; k < m_vec; ++k) e[k] = -gate[i0 + k];
        simd::exp_vec_n(e, e, m_vec);
        for (int64_t k = m_vec; k < m; ++k) e[k] = std::exp(-gate[i0 + k]);
        for (int64_t k = 0; k < m; ++k) {
            const float g = gate[i0 + k];
            out[i0 + k] = g / (1.0f + e[k]) * up[i0 + k];
        }
    }
}

void softmax(float* x, int64_t n) {
    softmax_masked(x, n, n);
}

void softmax_masked(float* x, int64_t n, int64_t n_total) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
    double sum = 0.0;
    // Whole groups of 16 of the full row go through the vector exp; e^-inf is 0 there.
    const int64_t vec = n_total & ~int64_t{15};
    const int64_t n_vec = std::min(n, vec);
    for (int64_t k = 0; k < n_vec; ++k) x[k] -= max;
    simd::exp_vec_n(x, x, n_vec);
    int64_t i = 0;
    for (; i < n_vec; i += 16) {
        float lanes[16];
        for (int64_t l = 0; l < 16; ++l) lanes[l] = i + l < n_vec ? x[i + l] : 0.0f;
        sum += static_cast<double>(simd::reduce_16(lanes));
    }
    for (; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += static_cast<double>(x[i]);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t k = 0; k < n; ++k) x[k] *= inv;
}

float sigmoid(float x) {
    return 1.0f / (1.0f + std::exp(-x));
}

void add(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

namespace {

// The pair index at which a rotation of `beta` turns happens over the original context.
float yarn_corr_dim(int64_t n_rot, int64_t n_ctx_orig, float beta, float base) {
    const float pi = std::numbers::pi_v<float>;
    return static_cast<float>(n_rot) *
           std::log(static_cast<float>(n_ctx_orig) / (beta * 2.0f * pi)) / (2.0f * std::log(base));
}

// 1 for pairs below the low correction dim (extrapolated), 0 above the high one (interpolated),
// linear between.
float yarn_ramp(float low, float high, int64_t pair) {
    const float y = (static_cast<float>(pair) - low) / std::max(0.001f, high - low);
    return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

}  // namespace

void yarn_corr_dims(const RopeParams& p, float dims[2]) {
    const float start = std::floor(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_fast, p.freq_base));
    const float end = std::ceil(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_slow, p.freq_base));
    dims[0] = std::max(0.0f, start);
    dims[1] = std::min(static_cast<float>(p.n_rot - 1), end);
}

void rope_table(const RopeParams& p, int64_t pos, float* table) {
    const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    float corr[2] = {0.0f, 0.0f};
    if (p.ext_factor != 0.0f) yarn_corr_dims(p, corr);
    float mscale = p.attn_factor;
    // YaRN's magnitude correction for interpolated frequencies. Here and in the mix below, the
    // fused multiply-adds are the ones the reference's compiler forms (ggml-cpu is built as GNU
    // C++ with contraction on).
    if (p.ext_factor != 0.0f) mscale *= std::fma(0.1f, std::log(1.0f / p.freq_scale), 1.0f);

    float theta_extrap = static_cast<float>(pos);
    for (int64_t pair = 0; pair < p.n_rot / 2; ++pair) {
        const float ff = p.freq_factors.empty() ? 1.0f : p.freq_factors[static_cast<size_t>(pair)];
        const float extrap = theta_extrap / ff;
        const float interp = p.freq_scale * extrap;
        float theta = interp;
        if (p.ext_factor != 0.0f) {
            const float mix = yarn_ramp(corr[0], corr[1], pair) * p.ext_factor;
            theta = std::fma(interp, 1.0f - mix, extrap * mix);
        }
        table[2 * pair] = std::cos(theta) * mscale;
        table[2 * pair + 1] = std::sin(theta) * mscale;
        theta_extrap *= theta_scale;
    }
}

void rope_apply(const RopeParams& p, const float* table, float* x) {
    const int64_t half = p.n_rot / 2;
    for (int64_t pair = 0; pair < half; ++pair) {
        // Adjacent: elements 2i and 2i+1; NEOX: i and i + n_rot/2.
        float* a = p.layout == RopeLayout::Adjacent ? x + 2 * pair : x + pair;
        float* b = p.layout == RopeLayout::Adjacent ? a + 1 : a + half;
        const float c = table[2 * pair], s = table[2 * pair + 1];
        const float x0 = *a, x1 = *b;
        // The reference's compiler contracts each line into one fused multiply-add (ggml's CPU
        // files are built as GNU C/C++, where contraction is on): the second product is
        // rounded, the first is not.
        *a = std::fma(x0, c, -(x1 * s));
        *b = std::fma(x0, s, x1 * c);
    }
}

}  // namespace strata::ops
