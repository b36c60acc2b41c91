// llama (Llama 2/3, R1-Distill-Llama): pre-norm decoder with grouped-query attention, RoPE on
// adjacent pairs (llama3 frequency factors when rope_freqs.weight is present), SwiGLU FFN, tied
// or separate output. qwen2 is the same decoder with NEOX rope and Q/K/V biases (qwen2.cpp).
#include <cmath>
#include <cstring>

#include "runtime/arch/archs.h"
#include "runtime/arch/attention.h"
#include "runtime/arch/common.h"
#include "runtime/arch/products.h"
#include "runtime/arch/segmented.h"
#include "runtime/arch/tap.h"

namespace strata::arch {
namespace {

struct GqaLayer {
    std::vector<float> attn_norm;   // (n_embd)
    simd::Matrix wq;                // [n_embd, n_head · head_dim]
    simd::Matrix wk;                // [n_embd, n_head_kv · head_dim]
    simd::Matrix wv;                // [n_embd, n_head_kv · head_dim]
    simd::Matrix wo;                // [n_head · head_dim, n_embd]
    std::vector<float> bq, bk, bv;  // biases of q / k / v, empty when absent
    std::vector<float> ffn_norm;    // (n_embd)
    Ffn ffn;
};

class GqaForward final : public SegmentedForward {
  public:
    GqaForward(const Model& model, ops::RopeLayout layout)
        : SegmentedForward(model.hparams().n_vocab),
          model_(model),
          hp_(model.hparams()),
          head_(model) {
        rope_ = rope_params(model, layout);
        for (const LayerWeights& l : model.layers()) {
            GqaLayer g;
            g.attn_norm = f32_copy(l.attn_norm);
            g.wq = matrix(*l.attn_q);
            g.wk = matrix(*l.attn_k);
            g.wv = matrix(*l.attn_v);
            g.wo = matrix(*l.attn_output);
            g.bq = f32_copy(l.attn_q_bias);
            g.bk = f32_copy(l.attn_k_bias);
            g.bv = f32_copy(l.attn_v_bias);
            g.ffn_norm = f32_copy(l.ffn_norm);
            g.ffn = {matrix(*l.ffn_gate), matrix(*l.ffn_up), matrix(*l.ffn_down)};
            layers_.push_back(std::move(g));
        }
    }

    KvLayout kv_layout() const override {
        const int64_t width = hp_.n_head_kv * hp_.head_dim;
        return {hp_.n_layer, width, width};
    }

  private:
    void pass(std::span<const int32_t> tokens, std::span<const Segment> segs, int64_t n_out,
              float* logits) override {
        const auto n = static_cast<int64_t>(tokens.size());
        const int64_t n_embd = hp_.n_embd;
        float* x = grow(x_, n * n_embd);
        float* xn = grow(xn_, n * n_embd);
        float* out = grow(out_, n * n_embd);
        for (int64_t t = 0; t < n; ++t)
            mm_.embed_row(*model_.token_embd, tokens[t], x + t * n_embd);
        const std::vector<float> tables = rope_tables(rope_, segs);
        int64_t first = 0;  // first row carried through the last block's feed-forward part
        tap_next_pass();
        tap("embd", -1, x, n * n_embd);

        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            const GqaLayer& L = layers_[static_cast<size_t>(il)];
            tap_set_layer(il);
            first = residual_block(
                il, il == hp_.n_layer - 1, n, n_out, n_embd, hp_.rms_eps, L.attn_norm, L.ffn_norm,
                x, xn, out,
                [&](const float* in, float* res) { attention(L, il, in, segs, tables, res); },
                [&](const float* in, int64_t m, float* res) { mm_.ffn(L.ffn, in, m, res, ffn_); });
        }
        if (n_out > 0) head_.run(x + first * n_embd, n_embd, n_out, logits, xn_, act_, mm_);
    }

    // out (rows, n_embd) = grouped-query attention of the normalised rows xn; writes each
    // segment's keys and values into its cache.
    void attention(const GqaLayer& L, int64_t il, const float* xn, std::span<const Segment> segs,
                   const std::vector<float>& tables, float* out) {
        const int64_t n = segs.back().row0 + segs.back().n;
        const int64_t n_embd = hp_.n_embd, hd = hp_.head_dim;
        const int64_t q_dim = hp_.n_head * hd, kv_dim = hp_.n_head_kv * hd;
        float* q = grow(q_, n * q_dim);
        float* k = grow(k_, n * kv_dim);
        float* v = grow(v_, n * kv_dim);
        float* att = grow(att_, n * q_dim);
        // Q, K and V: the input converted once, the three products one job.
        in_.set(xn, n_embd, n_embd, n);
        const simd::Product qkv[] = {{&L.wq, &in_.for_weights(L.wq), q, q_dim},
                                     {&L.wk, &in_.for_weights(L.wk), k, kv_dim},
                                     {&L.wv, &in_.for_weights(L.wv), v, kv_dim}};
        mm_.batch(qkv);
        add_bias(L.bq, n, q_dim, q);
        add_bias(L.bk, n, kv_dim, k);
        add_bias(L.bv, n, kv_dim, v);
        tap("Qcur", il, q, n * q_dim);
        tap("Kcur", il, k, n * kv_dim);
        tap("Vcur", il, v, n * kv_dim);
        for (const Segment& sg : segs) {
            for (int64_t j = 0; j < sg.n; ++j) {
                const int64_t t = sg.row0 + j, pos = sg.pos0 + j;
                const float* table = tables.data() + t * rope_.n_rot;
                for (int64_t h = 0; h < hp_.n_head; ++h)
                    ops::rope_apply(rope_, table, q + t * q_dim + h * hd);
                for (int64_t h = 0; h < hp_.n_head_kv; ++h)
                    ops::rope_apply(rope_, table, k + t * kv_dim + h * hd);
                std::memcpy(sg.cache->k(il, pos), k + t * kv_dim, sizeof(float) * kv_dim);
                for (int64_t i = 0; i < kv_dim; ++i)
                    sg.cache->v_col(il, i)[pos] = v[t * kv_dim + i];
            }
        }
        tap("Qcur@ROPE", il, q, n * q_dim);
        tap("Kcur@ROPE", il, k, n * kv_dim);
        AttentionShape shape;
        shape.n_head = hp_.n_head;
        shape.n_head_kv = hp_.n_head_kv;
        shape.k_dim = hd;
        shape.v_dim = hd;
        shape.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        attend_segments(shape, segs, il, q, q_dim, att, q_dim);
        tap("kqv_out", il, att, n * q_dim);
        mm_.matmul(L.wo, att, q_dim, n, out, n_embd, act_);
    }

    // y (n, width) += bias, when there is one.
    static void add_bias(const std::vector<float>& bias, int64_t n, int64_t width, float* y) {
        if (bias.empty()) return;
        for (int64_t t = 0; t < n; ++t) ops::add(y + t * width, bias.data(), width);
    }

    const Model& model_;
    const HParams& hp_;
    ops::RopeParams rope_;
    std::vector<GqaLayer> layers_;
    OutputHead head_;
    std::vector<float> x_;    // (n, n_embd) residual stream
    std::vector<float> xn_;   // (n, n_embd) normalised input of a block
    std::vector<float> q_;    // (n, n_head · head_dim)
    std::vector<float> k_;    // (n, n_head_kv · head_dim)
    std::vector<float> v_;    // (n, n_head_kv · head_dim)
    std::vector<float> att_;  // (n, n_head · head_dim) attention output before attn_output
    std::vector<float> out_;  // (n, n_embd) block output
    SharedInput in_;          // attention's normalised input, converted
    FfnScratch ffn_;
    simd::Activations act_;
};

}  // namespace

std::unique_ptr<Forward> make_gqa_forward(const Model& model, ops::RopeLayout layout) {
    return std::make_unique<GqaForward>(model, layout);
}

}  // namespace strata::arch
