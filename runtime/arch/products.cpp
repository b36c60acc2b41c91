#include "runtime/arch/products.h"

#include <vector>

#include "runtime/ops.h"

namespace strata::arch {

void Products::matmul(const simd::Matrix& w, const simd::Activations& a, float* y, int64_t y_stride,
                      simd::Path p) const {
    if (tier_) {
        if (const auto dw = tier_->find(w)) {
            tier_->device().matmul(*dw, a, y, y_stride, path(p));
            return;
        }
    }
    simd::matmul(w, a, y, y_stride, path(p));
}

void Products::matmul(const simd::Matrix& w, const float* x, int64_t x_stride, int64_t n_rows,
                      float* y, int64_t y_stride, simd::Activations& scratch, simd::Path p) const {
    scratch.quantize(quant::traits(w.type).partner, x, x_stride, w.n_in, n_rows);
    matmul(w, scratch, y, y_stride, p);
}

void Products::batch(std::span<const simd::Product> products) const {
    if (!tier_ && !apart_) {
        simd::matmul_batch(products);
        return;
    }
    std::vector<simd::Product> here;
    for (simd::Product p : products) {
        if (on_device(*p.w)) {
            matmul(*p.w, *p.a, p.y, p.y_stride, p.path);
            continue;
        }
        p.path = path(p.path);
        here.push_back(p);
    }
    if (!here.empty()) simd::matmul_batch(here);
}

void Products::ffns(std::span<const FfnTask> tasks, FfnScratch& s) const {
    if (!tier_ && !apart_) {
        run_ffns(tasks, s);
        return;
    }
    std::vector<FfnTask> here, there;
    for (FfnTask t : tasks) {
        t.path = path(t.path);
        const bool device = on_device(t.w->gate) || on_device(t.w->up) || on_device(t.w->down);
        (device ? there : here).push_back(t);
    }
    if (!here.empty()) run_ffns(here, s);
    // Each product where its weights are; silu(gate) · up and the conversion for down on the
    // host, over whole rows (run_ffns's chunks start at multiples of 16, so swiglu's vector
    // groups fall alike).
    if (s.mid.empty()) s.mid.resize(1);
    for (const FfnTask& t : there) {
        const int64_t m = t.in_gate->n_rows(), n_ff = t.w->gate.n_out;
        float* g = grow(s.hidden, m * n_ff);
        float* u = grow(s.up, m * n_ff);
        matmul(t.w->gate, *t.in_gate, g, n_ff, t.path);
        matmul(t.w->up, *t.in_up, u, n_ff, t.path);
        for (int64_t r = 0; r < m; ++r) ops::swiglu(g + r * n_ff, u + r * n_ff, n_ff, g + r * n_ff);
        s.mid[0].quantize(quant::traits(t.w->down.type).partner, g, n_ff, n_ff, m);
        matmul(t.w->down, s.mid[0], t.out, t.w->down.n_out, t.path);
    }
}

void Products::ffn(const Ffn& w, const float* x, int64_t n_rows, float* out, FfnScratch& s,
                   simd::Path p) const {
    s.input.set(x, w.gate.n_in, w.gate.n_in, n_rows);
    const simd::Activations& in_gate = s.input.for_weights(w.gate);
    const simd::Activations& in_up = s.input.for_weights(w.up);
    const FfnTask task{&w, &in_gate, &in_up, out, p};
    ffns({&task, 1}, s);
}

void Products::embed_row(const gguf::Tensor& t, int32_t token, float* out) const {
    const size_t rb = t.row_bytes();
    const uint8_t* row = t.data + static_cast<size_t>(token) * rb;
    if (tier_) {
        if (const auto at = tier_->find(row, rb)) {
            std::vector<uint8_t> copy(rb);
            tier_->device().read(at->first, at->second, rb, copy.data());
            quant::dequantize_row(t.type, copy.data(), out, t.ne[0]);
            return;
        }
    }
    arch::embed_row(t, token, out);
}

}  // namespace strata::arch
