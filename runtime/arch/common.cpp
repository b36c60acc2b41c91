// Shared pieces of the forward passes.
#include "runtime/arch/common.h"

#include <cmath>
#include <cstring>

#include "runtime/arch/tap.h"
#include "runtime/error.h"

namespace strata::arch {
namespace {

void require_multipliable(const gguf::Tensor& t) {
    if (!simd::can_multiply(t.type)) {
        fail("tensor '{}' has type {}, whose matrix product is not available yet", t.name,
             quant::type_name(t.type));
    }
}

// YaRN's magnitude for a context extended `scale` times (HF modeling_rope_utils get_mscale).
float yarn_get_mscale(float scale, float mscale) {
    return scale <= 1.0f ? 1.0f : 0.1f * mscale * std::log(scale) + 1.0f;
}

}  // namespace

simd::Matrix matrix(const gguf::Tensor& t) {
    require_multipliable(t);
    simd::Matrix m;
    m.data = t.data;
    m.type = t.type;
    m.n_in = t.ne[0];
    m.n_out = t.ne[1] * t.ne[2] * t.ne[3];
    m.row_stride = t.row_bytes();
    return m;
}

simd::Matrix matrix_slice(const gguf::Tensor& t, int64_t i2) {
    simd::Matrix m = matrix(t);
    m.n_out = t.ne[1];
    m.data = t.data + static_cast<size_t>(i2) * static_cast<size_t>(t.ne[1]) * m.row_stride;
    return m;
}

std::vector<float> f32_copy(const gguf::Tensor* t) {
    if (!t) return {};
    std::vector<float> v(static_cast<size_t>(t->n_elements()));
    // The binder checked the type is F32; copying also avoids reading floats from a mapping
    // whose alignment the file chose.
    std::memcpy(v.data(), t->data, v.size() * sizeof(float));
    return v;
}

void embed_row(const gguf::Tensor& t, int32_t token, float* out) {
    const size_t rb = t.row_bytes();
    quant::dequantize_row(t.type, t.data + static_cast<size_t>(token) * rb, out, t.ne[0]);
}

// llama.cpp reads the YaRN log multiplier for deepseek2 only, and divides it by the 0.1 the
// converter multiplied in: it is then mscale_all_dim.
float yarn_log_mul(const HParams& hp) {
    return hp.arch == Arch::DeepSeek2 ? hp.yarn_log_mul / 0.1f : 0.0f;
}

// The cos/sin magnitude handed to the rope kernel (before its own YaRN factor), as
// llama_context sets yarn_attn_factor.
float rope_attn_factor(const HParams& hp) {
    float attn = 1.0f;
    if (hp.scaling == RopeScaling::Yarn) {
        const float factor = 1.0f / rope_freq_scale(hp);
        const float all_dims = yarn_log_mul(hp);
        if (all_dims != 0.0f) {
            // DeepSeek's mscale equals mscale_all_dim, so the ratio is 1: the rotation keeps
            // unit magnitude and the correction goes into the attention scale instead.
            float mscale = 1.0f;
            if (hp.arch == Arch::DeepSeek2 && all_dims != 1.0f) mscale = all_dims;
            attn = yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, all_dims);
        } else {
            attn = yarn_get_mscale(factor, 1.0f);
        }
        // The rope kernel multiplies by 1 + 0.1 ln(factor) itself; cancel it here.
        attn *= 1.0f / (1.0f + 0.1f * std::log(factor));
    }
    return attn * hp.rope_attn_factor;
}

float rope_freq_scale(const HParams& hp) {
    return hp.scaling == RopeScaling::None ? 1.0f : 1.0f / hp.rope_factor;
}

ops::RopeParams rope_params(const Model& model, ops::RopeLayout layout) {
    const HParams& hp = model.hparams();
    ops::RopeParams p;
    p.n_rot = hp.n_rot;
    p.layout = layout;
    p.freq_base = hp.rope_base;
    p.freq_scale = rope_freq_scale(hp);
    p.ext_factor = hp.scaling == RopeScaling::Yarn ? 1.0f : 0.0f;
    p.attn_factor = rope_attn_factor(hp);
    p.beta_fast = hp.yarn_beta_fast;
    p.beta_slow = hp.yarn_beta_slow;
    p.n_ctx_orig = hp.rope_orig_ctx > 0 ? hp.rope_orig_ctx : hp.n_ctx_train;
    if (model.rope_freqs) p.freq_factors = f32_copy(model.rope_freqs);
    return p;
}

std::vector<float> rope_tables(const ops::RopeParams& p, int64_t pos0, int64_t n) {
    std::vector<float> t(static_cast<size_t>(n * p.n_rot));
    for (int64_t i = 0; i < n; ++i) ops::rope_table(p, pos0 + i, t.data() + i * p.n_rot);
    return t;
}

int64_t output_rows(int64_t n, bool all_logits, bool logits_wanted) {
    if (!logits_wanted) return 0;
    return all_logits ? n : 1;
}

float* grow(std::vector<float>& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
    return v.data();
}

void run_ffn(const Ffn& w, const float* x, int64_t n_rows, float* out, FfnScratch& s,
             simd::Path path) {
    const int64_t n_embd = w.gate.n_in, n_ff = w.gate.n_out;
    float* gate = grow(s.gate, n_rows * n_ff);
    float* up = grow(s.up, n_rows * n_ff);
    // gate and up share their input and partner format in every file llama-quantize writes,
    // but a mix may differ: convert per product.
    simd::matmul(w.gate, x, n_embd, n_rows, gate, n_ff, s.act, path);
    simd::matmul(w.up, x, n_embd, n_rows, up, n_ff, s.act, path);
    tap("ffn_gate", kTapCurrent, gate, n_rows * n_ff);
    tap("ffn_up", kTapCurrent, up, n_rows * n_ff);
    for (int64_t t = 0; t < n_rows; ++t)
        ops::swiglu(gate + t * n_ff, up + t * n_ff, n_ff, gate + t * n_ff);
    tap("ffn_swiglu", kTapCurrent, gate, n_rows * n_ff);
    simd::matmul(w.down, gate, n_ff, n_rows, out, w.down.n_out, s.act, path);
}

OutputHead::OutputHead(const Model& model)
    : norm(f32_copy(model.output_norm)),
      output(matrix(*model.output)),
      eps(model.hparams().rms_eps) {}

void OutputHead::run(const float* x, int64_t n_embd, int64_t n_rows, float* logits,
                     std::vector<float>& tmp, simd::Activations& act) const {
    float* xn = grow(tmp, n_rows * n_embd);
    for (int64_t t = 0; t < n_rows; ++t)
        ops::rms_norm(x + t * n_embd, norm.data(), n_embd, eps, xn + t * n_embd);
    tap("result_norm", -1, xn, n_rows * n_embd);
    simd::matmul(output, xn, n_embd, n_rows, logits, output.n_out, act);
    tap("result_output", -1, logits, n_rows * output.n_out);
}

}  // namespace strata::arch
