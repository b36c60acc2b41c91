// Shared pieces of the forward passes.
#include "runtime/arch/common.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/arch/attention.h"
#include "runtime/arch/products.h"
#include "runtime/arch/tap.h"
#include "runtime/error.h"
#include "simd/parallel.h"

namespace strata::arch {
namespace {

void require_multipliable(const gguf::Tensor& t) {
    if (!simd::can_multiply(t.type)) {
        fail("tensor '{}' has type {}, whose matrix product is not available yet", t.name,
             quant::type_name(t.type));
    }
}

// n_out rows of t from `data`, in the regrouped layout or the file's.
simd::Matrix rows_view(const gguf::Tensor& t, const uint8_t* data, int64_t n_out,
                       bool interleaved) {
    require_multipliable(t);
    simd::Matrix m;
    m.data = data;
    m.type = t.type;
    m.n_in = t.ne[0];
    m.n_out = n_out;
    m.row_stride = t.row_bytes();
    m.layout = interleaved ? simd::Layout::Interleaved16 : simd::Layout::Rows;
    return m;
}

// YaRN's magnitude for a context extended `scale` times (HF modeling_rope_utils get_mscale).
float yarn_get_mscale(float scale, float mscale) {
    return scale <= 1.0f ? 1.0f : 0.1f * mscale * std::log(scale) + 1.0f;
}

}  // namespace

simd::Matrix matrix(const gguf::Tensor& t) {
    // A stack regrouped slab by slab has no one layout: its views are its slabs.
    if (!t.interleaved_slabs.empty())
        fail("{} is regrouped slab by slab and cannot be multiplied whole", t.name);
    return rows_view(t, t.data, t.n_rows(), t.interleaved);
}

simd::Matrix matrix_slice(const gguf::Tensor& t, int64_t i2) {
    const size_t offset = static_cast<size_t>(i2) * static_cast<size_t>(t.ne[1]) * t.row_bytes();
    return rows_view(t, t.data + offset, t.ne[1], t.slab_interleaved(i2));
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

void attend_segments(const AttentionShape& shape, std::span<const Segment> segments, int64_t layer,
                     const float* q, int64_t q_stride, float* out, int64_t out_stride) {
    bool single = true;  // one row each, consecutive
    for (size_t i = 0; i < segments.size(); ++i)
        single = single && segments[i].n == 1 &&
                 segments[i].row0 == segments.front().row0 + static_cast<int64_t>(i);
    if (single && segments.size() > 1) {
        thread_local std::vector<DecodeRow> rows;
        rows.clear();
        for (const Segment& s : segments) rows.push_back({s.cache, s.pos0});
        attend_decode(shape, rows, layer, q + segments.front().row0 * q_stride, q_stride,
                      out + segments.front().row0 * out_stride, out_stride);
        return;
    }
    for (const Segment& s : segments)
        attend(shape, *s.cache, layer, s.pos0, s.n, q + s.row0 * q_stride, q_stride,
               out + s.row0 * out_stride, out_stride);
}

std::vector<float> rope_tables(const ops::RopeParams& p, std::span<const Segment> segments) {
    int64_t rows = 0;
    for (const Segment& s : segments) rows += s.n;
    std::vector<float> t(static_cast<size_t>(rows * p.n_rot));
    for (const Segment& s : segments) {
        for (int64_t i = 0; i < s.n; ++i)
            ops::rope_table(p, s.pos0 + i, t.data() + (s.row0 + i) * p.n_rot);
    }
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

void SharedInput::set(const float* x, int64_t x_stride, int64_t n_in, int64_t n_rows) {
    x_ = x;
    x_stride_ = x_stride;
    n_in_ = n_in;
    n_rows_ = n_rows;
    n_used_ = 0;
}

const simd::Activations& SharedInput::as(quant::Type partner) {
    for (int i = 0; i < n_used_; ++i) {
        if (conv_type_[static_cast<size_t>(i)] == partner) return conv_[static_cast<size_t>(i)];
    }
    // A slot per partner format: n_used_ never passes conv_.size().
    const auto slot = static_cast<size_t>(n_used_++);
    conv_[slot].quantize(partner, x_, x_stride_, n_in_, n_rows_);
    conv_type_[slot] = partner;
    return conv_[slot];
}

void run_ffns(std::span<const FfnTask> tasks, FfnScratch& s) {
    const auto n_tasks = static_cast<int64_t>(tasks.size());
    if (n_tasks == 0) return;
    // Where each task's hidden rows start in the scratch buffers, and the rows in all.
    std::vector<int64_t> hidden_at(tasks.size() + 1, 0);
    int64_t ff_rows = 0, embd_rows = 0, work = 0;
    for (int64_t i = 0; i < n_tasks; ++i) {
        const FfnTask& t = tasks[static_cast<size_t>(i)];
        const int64_t m = t.in_gate->n_rows(), n_ff = t.w->gate.n_out;
        hidden_at[static_cast<size_t>(i) + 1] = hidden_at[static_cast<size_t>(i)] + m * n_ff;
        ff_rows += n_ff;
        embd_rows += t.w->down.n_out;
        work += 3 * m * n_ff * t.w->gate.n_in;
    }
    float* hidden = grow(s.hidden, hidden_at.back());
    float* up = grow(s.up, hidden_at.back());
    if (s.mid.size() < tasks.size()) s.mid.resize(tasks.size());

    // Chunks of rows, whole tiles, about eight per thread over all the tasks' rows together:
    // a task's chunks are (task, first row) pairs listed in order.
    const int threads = simd::team_size();
    struct Chunk {
        int64_t task, r0, r1;
    };
    auto chunks_of = [&](int64_t total_rows, auto rows_of) {
        const int64_t size = simd::row_chunk(total_rows, 2 * threads);
        std::vector<Chunk> chunks;
        for (int64_t i = 0; i < n_tasks; ++i) {
            const int64_t rows = rows_of(tasks[static_cast<size_t>(i)]);
            for (int64_t r0 = 0; r0 < rows; r0 += size)
                chunks.push_back({i, r0, std::min(rows, r0 + size)});
        }
        return chunks;
    };

    const std::vector<Chunk> ff_chunks =
        chunks_of(ff_rows, [](const FfnTask& t) { return t.w->gate.n_out; });
    simd::parallel_for(static_cast<int64_t>(ff_chunks.size()), work, [&](int64_t c) {
        const Chunk& ch = ff_chunks[static_cast<size_t>(c)];
        const FfnTask& t = tasks[static_cast<size_t>(ch.task)];
        const int64_t n_ff = t.w->gate.n_out, m = t.in_gate->n_rows();
        float* g = hidden + hidden_at[static_cast<size_t>(ch.task)];
        float* u = up + hidden_at[static_cast<size_t>(ch.task)];
        simd::matmul_rows(t.w->gate, ch.r0, ch.r1, *t.in_gate, g, n_ff, t.path);
        simd::matmul_rows(t.w->up, ch.r0, ch.r1, *t.in_up, u, n_ff, t.path);
        // Chunks start at multiples of 16, so swiglu's vector groups fall where they fall for
        // the whole row.
        for (int64_t r = 0; r < m; ++r)
            ops::swiglu(g + r * n_ff + ch.r0, u + r * n_ff + ch.r0, ch.r1 - ch.r0,
                        g + r * n_ff + ch.r0);
    });
    tap("ffn_swiglu", kTapCurrent, hidden, hidden_at.back());

    simd::parallel_for(n_tasks, work, [&](int64_t i) {
        const FfnTask& t = tasks[static_cast<size_t>(i)];
        const int64_t n_ff = t.w->gate.n_out;
        s.mid[static_cast<size_t>(i)].quantize(quant::traits(t.w->down.type).partner,
                                               hidden + hidden_at[static_cast<size_t>(i)], n_ff,
                                               n_ff, t.in_gate->n_rows());
    });

    const std::vector<Chunk> embd_chunks =
        chunks_of(embd_rows, [](const FfnTask& t) { return t.w->down.n_out; });
    simd::parallel_for(static_cast<int64_t>(embd_chunks.size()), work, [&](int64_t c) {
        const Chunk& ch = embd_chunks[static_cast<size_t>(c)];
        const FfnTask& t = tasks[static_cast<size_t>(ch.task)];
        simd::matmul_rows(t.w->down, ch.r0, ch.r1, s.mid[static_cast<size_t>(ch.task)], t.out,
                          t.w->down.n_out, t.path);
    });
}

void run_ffn(const Ffn& w, const float* x, int64_t n_rows, float* out, FfnScratch& s,
             simd::Path path) {
    s.input.set(x, w.gate.n_in, w.gate.n_in, n_rows);
    // gate and up share their partner format in every file llama-quantize writes; a mix that
    // does not gets two conversions.
    const simd::Activations& in_gate = s.input.for_weights(w.gate);
    const simd::Activations& in_up = s.input.for_weights(w.up);
    const FfnTask task{&w, &in_gate, &in_up, out, path};
    run_ffns({&task, 1}, s);
}

OutputHead::OutputHead(const Model& model)
    : norm(f32_copy(model.output_norm)),
      output(matrix(*model.output)),
      eps(model.hparams().rms_eps) {}

void OutputHead::run(const float* x, int64_t n_embd, int64_t n_rows, float* logits,
                     std::vector<float>& tmp, simd::Activations& act, const Products& mm) const {
    float* xn = grow(tmp, n_rows * n_embd);
    for (int64_t t = 0; t < n_rows; ++t)
        ops::rms_norm(x + t * n_embd, norm.data(), n_embd, eps, xn + t * n_embd);
    tap("result_norm", -1, xn, n_rows * n_embd);
    mm.matmul(output, xn, n_embd, n_rows, logits, output.n_out, act);
    tap("result_output", -1, logits, n_rows * output.n_out);
}

}  // namespace strata::arch
