// How closely two sets of logits agree, by the metrics of the golden reference set
// (golden/README.md): per position the largest difference relative to the reference's largest
// logit, the KL divergence of the two softmaxes, and whether the argmaxes agree. Used by
// `strata eval --ref`, the golden test and the llama.cpp comparison (scripts/compare-llamacpp.sh).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace strata::metrics {

// max_i |out_i − ref_i| / max_i |ref_i| of one row of n.
template <typename A, typename B>
double row_max_rel(const A* out, const B* ref, int64_t n) {
    double err = 0.0, scale = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        err = std::max(err, std::fabs(static_cast<double>(out[i]) - static_cast<double>(ref[i])));
        scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
    }
    return err / scale;
}

// KL(softmax(ref) ‖ softmax(out)) of one row, in double.
template <typename A, typename B>
double row_kl(const A* out, const B* ref, int64_t n) {
    double mo = -INFINITY, mr = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
        mo = std::max(mo, static_cast<double>(out[i]));
        mr = std::max(mr, static_cast<double>(ref[i]));
    }
    double so = 0.0, sr = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        so += std::exp(static_cast<double>(out[i]) - mo);
        sr += std::exp(static_cast<double>(ref[i]) - mr);
    }
    double kl = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const double lp = static_cast<double>(ref[i]) - mr - std::log(sr);
        const double lq = static_cast<double>(out[i]) - mo - std::log(so);
        kl += std::exp(lp) * (lp - lq);
    }
    return kl;
}

// Index of the largest value (the first of equal ones).
template <typename A>
int64_t row_argmax(const A* v, int64_t n) {
    return std::max_element(v, v + n) - v;
}

struct LogitAgreement {
    int64_t n_rows = 0;
    double max_rel = 0.0;    // the largest row_max_rel
    int64_t worst_row = 0;   // where it is
    double mean_kl = 0.0;    // row_kl averaged over the rows
    double top1 = 0.0;       // fraction of rows with the same argmax
    int64_t exact_rows = 0;  // rows equal bit for bit
};

// out and ref hold the same number of rows of n_vocab (callers check).
LogitAgreement compare_logits(std::span<const float> out, std::span<const float> ref,
                              int64_t n_vocab);

// The golden README's bounds: F32 weights must keep max_rel ≤ 1e-3 at every position (and the
// greedy continuation, which callers compare); F16, BF16 and quantized weights mean_kl ≤ 5e-3
// and top1 ≥ 0.98.
constexpr double kF32MaxRel = 1e-3;
constexpr double kQuantMeanKl = 5e-3;
constexpr double kQuantTop1 = 0.98;
inline bool within_f32_bounds(const LogitAgreement& a) {
    return a.max_rel <= kF32MaxRel;
}
inline bool within_quant_bounds(const LogitAgreement& a) {
    return a.mean_kl <= kQuantMeanKl && a.top1 >= kQuantTop1;
}

}  // namespace strata::metrics
