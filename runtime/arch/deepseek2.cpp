// deepseek2 (DeepSeek-V2 / V3 / R1): multi-head latent attention (MLA) and a mixture of experts.
//
// Attention. Each token's hidden state is projected to a query (through the q_lora bottleneck
// attn_q_a → attn_q_a_norm → attn_q_b, or a plain attn_q) and to a compressed KV row
// attn_kv_a_mqa = [latent (kv_lora) | k_pe (qk_rope)]. The cache keeps, per token and layer,
// only the normalised latent and the rotated k_pe, shared by all heads. Attention runs
// "absorbed": a head's no-rope query is mapped into latent space through attn_k_b, scored against
// the cached rows as one MQA key of kv_lora + qk_rope, and the weighted sum of latents is mapped
// to the head's value through attn_v_b. Files with the legacy attn_kv_b (pre-MLA converters) run
// as llama.cpp runs them: the latent is decompressed through attn_kv_b into per-head keys
// [k_nope | k_pe] and values, cached per head, and attention is plain multi-head attention.
// RoPE (YaRN) rotates only the last qk_rope dims of each query head and k_pe, adjacent pairs.
//
// FFN. The first n_dense_lead blocks are dense SwiGLU; the rest route each token to n_used of
// n_expert SwiGLU experts (router.h) and add the shared experts' output.
#include <cmath>
#include <cstring>

#include "runtime/arch/archs.h"
#include "runtime/arch/attention.h"
#include "runtime/arch/common.h"
#include "runtime/arch/router.h"
#include "runtime/arch/tap.h"

namespace strata::arch {
namespace {

struct MlaLayer {
    std::vector<float> attn_norm;  // (n_embd)
    bool q_lora = false;
    simd::Matrix wq;                // no q_lora: [n_embd, n_head · (qk_nope + qk_rope)]
    simd::Matrix wq_a;              // [n_embd, q_lora]
    std::vector<float> q_a_norm;    // (q_lora)
    simd::Matrix wq_b;              // [q_lora, n_head · (qk_nope + qk_rope)]
    simd::Matrix wkv_a;             // [n_embd, kv_lora + qk_rope]
    std::vector<float> kv_a_norm;   // (kv_lora)
    std::vector<simd::Matrix> k_b;  // per head: [qk_nope, kv_lora], query → latent space
    std::vector<simd::Matrix> v_b;  // per head: [kv_lora, v_head], latent → value
    simd::Matrix wkv_b;             // legacy files: [kv_lora, n_head · (qk_nope + v_head)]
    simd::Matrix wo;                // [n_head · v_head, n_embd]
    std::vector<float> ffn_norm;    // (n_embd)

    bool moe = false;
    Ffn dense;                      // leading dense blocks
    simd::Matrix router;            // [n_embd, n_expert]
    std::vector<float> probs_bias;  // (n_expert) selection bias, or empty
    std::vector<Ffn> experts;       // per expert: [n_embd, n_ff_exp] ×2, [n_ff_exp, n_embd]
    bool shared = false;
    Ffn shared_ffn;  // [n_embd, n_ff_exp · n_shared] ...
};

class DeepSeek2Forward final : public Forward {
  public:
    explicit DeepSeek2Forward(const Model& model)
        : model_(model), hp_(model.hparams()), router_(RouterConfig::from(hp_)), head_(model) {
        rope_ = rope_params(model, ops::RopeLayout::Adjacent);
        kq_scale_ = mla_attention_scale(hp_);
        layers_.resize(static_cast<size_t>(hp_.n_layer));
        for (int64_t il = 0; il < hp_.n_layer; ++il) bind(il);
    }

    // MLA: one compressed row per token; legacy files: per-head keys and values.
    KvLayout kv_layout() const override {
        if (hp_.mla_split) return {hp_.n_layer, hp_.kv_lora_rank + hp_.qk_rope, 0};
        return {hp_.n_layer, hp_.n_head * (hp_.qk_nope + hp_.qk_rope), hp_.n_head * hp_.v_head};
    }

    void run(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits,
             float* logits) override {
        const int64_t n = static_cast<int64_t>(tokens.size());
        const int64_t n_embd = hp_.n_embd;
        float* x = grow(x_, n * n_embd);
        float* xn = grow(xn_, n * n_embd);
        float* out = grow(out_, n * n_embd);
        for (int64_t t = 0; t < n; ++t) embed_row(*model_.token_embd, tokens[t], x + t * n_embd);
        const std::vector<float> tables = rope_tables(rope_, pos0, n);
        const int64_t n_out = output_rows(n, all_logits, logits != nullptr);
        int64_t first = 0;  // first row carried through the current block's feed-forward part
        tap_next_pass();

        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            const MlaLayer& L = layers_[static_cast<size_t>(il)];
            tap_set_layer(il);
            for (int64_t t = 0; t < n; ++t) {
                ops::rms_norm(x + t * n_embd, L.attn_norm.data(), n_embd, hp_.rms_eps,
                              xn + t * n_embd);
            }
            tap("attn_norm", il, xn, n * n_embd);
            attention(L, il, xn, n, pos0, tables, cache, out);
            tap("attn_out", il, out, n * n_embd);
            // Past the last block's attention only the rows whose logits are wanted go on.
            if (il == hp_.n_layer - 1) first = n - n_out;
            const int64_t m = n - first;
            float *xr = x + first * n_embd, *xnr = xn + first * n_embd,
                  *outr = out + first * n_embd;
            ops::add(xr, outr, m * n_embd);
            tap("ffn_inp", il, xr, m * n_embd);

            for (int64_t t = 0; t < m; ++t) {
                ops::rms_norm(xr + t * n_embd, L.ffn_norm.data(), n_embd, hp_.rms_eps,
                              xnr + t * n_embd);
            }
            tap("ffn_norm", il, xnr, m * n_embd);
            if (m > 0 && L.moe) {
                moe(L, xnr, m, outr);
            } else if (m > 0) {
                run_ffn(L.dense, xnr, m, outr, ffn_);
            }
            tap("ffn_out", il, outr, m * n_embd);
            ops::add(xr, outr, m * n_embd);
            tap("l_out", il, xr, m * n_embd);
        }
        if (n_out > 0) head_.run(x + first * n_embd, n_embd, n_out, logits, xn_, act_);
    }

  private:
    void bind(int64_t il) {
        const LayerWeights& l = model_.layers()[static_cast<size_t>(il)];
        MlaLayer& L = layers_[static_cast<size_t>(il)];
        L.attn_norm = f32_copy(l.attn_norm);
        L.q_lora = l.attn_q_a != nullptr;
        if (L.q_lora) {
            L.wq_a = matrix(*l.attn_q_a);
            L.q_a_norm = f32_copy(l.attn_q_a_norm);
            L.wq_b = matrix(*l.attn_q_b);
        } else {
            L.wq = matrix(*l.attn_q);
        }
        L.wkv_a = matrix(*l.attn_kv_a_mqa);
        L.kv_a_norm = f32_copy(l.attn_kv_a_norm);
        if (hp_.mla_split) {
            for (int64_t h = 0; h < hp_.n_head; ++h) {
                L.k_b.push_back(matrix_slice(*l.attn_k_b, h));
                L.v_b.push_back(matrix_slice(*l.attn_v_b, h));
            }
        } else {
            L.wkv_b = matrix(*l.attn_kv_b);
        }
        L.wo = matrix(*l.attn_output);
        L.ffn_norm = f32_copy(l.ffn_norm);
        L.moe = hp_.is_moe_layer(il);
        if (!L.moe) {
            L.dense = {matrix(*l.ffn_gate), matrix(*l.ffn_up), matrix(*l.ffn_down)};
            return;
        }
        L.router = matrix(*l.ffn_gate_inp);
        L.probs_bias = f32_copy(l.exp_probs_b);
        for (int64_t e = 0; e < hp_.n_expert; ++e) {
            L.experts.push_back({matrix_slice(*l.ffn_gate_exps, e), matrix_slice(*l.ffn_up_exps, e),
                                 matrix_slice(*l.ffn_down_exps, e)});
        }
        L.shared = l.ffn_gate_shexp != nullptr;
        if (L.shared) {
            L.shared_ffn = {matrix(*l.ffn_gate_shexp), matrix(*l.ffn_up_shexp),
                            matrix(*l.ffn_down_shexp)};
        }
    }

    // out (n, n_embd) = MLA of the normalised rows xn; writes the tokens' cache rows.
    void attention(const MlaLayer& L, int64_t il, const float* xn, int64_t n, int64_t pos0,
                   const std::vector<float>& tables, KvCache& cache, float* out) {
        if (!hp_.mla_split) {
            attention_decompressed(L, il, xn, n, pos0, tables, cache, out);
            return;
        }
        const int64_t n_embd = hp_.n_embd, n_head = hp_.n_head;
        const int64_t nope = hp_.qk_nope, rope = hp_.qk_rope, lora = hp_.kv_lora_rank;
        const int64_t q_head = nope + rope, q_dim = n_head * q_head;
        const int64_t row = lora + rope;  // compressed cache row, and an absorbed query head

        float* q = queries(L, xn, n);
        tap("q", il, q, n * q_dim);
        float* kv = grow(kv_, n * row);
        simd::matmul(L.wkv_a, xn, n_embd, n, kv, row, act_);
        tap("kv_cmpr_pe", il, kv, n * row);

        // Cache rows: [rms_norm(latent) | rope(k_pe)]; queries' rope parts rotated in place.
        for (int64_t t = 0; t < n; ++t) {
            const float* table = tables.data() + t * rope_.n_rot;
            for (int64_t h = 0; h < n_head; ++h)
                ops::rope_apply(rope_, table, q + t * q_dim + h * q_head + nope);
            float* c = cache.k(il, pos0 + t);
            ops::rms_norm(kv + t * row, L.kv_a_norm.data(), lora, hp_.rms_eps, c);
            std::memcpy(c + lora, kv + t * row + lora, sizeof(float) * rope);
            ops::rope_apply(rope_, table, c + lora);
        }

        // Absorbed queries, (n, n_head, lora + rope): [k_b_h · q_nope | q_pe].
        float* qabs = grow(qcat_, n * n_head * row);
        for (int64_t h = 0; h < n_head; ++h) {
            // The reference multiplies a strided view of the queries here.
            simd::matmul(L.k_b[static_cast<size_t>(h)], q + h * q_head, q_dim, n, qabs + h * row,
                         n_head * row, act_, simd::Path::Strided);
            for (int64_t t = 0; t < n; ++t) {
                std::memcpy(qabs + (t * n_head + h) * row + lora, q + t * q_dim + h * q_head + nope,
                            sizeof(float) * rope);
            }
        }
        tap("Qcur", il, qabs, n * n_head * row);
        AttentionShape shape;
        shape.n_head = n_head;
        shape.n_head_kv = 1;
        shape.k_dim = row;
        shape.v_dim = lora;
        shape.scale = kq_scale_;
        shape.values_in_keys = true;
        float* lat = grow(lat_, n * n_head * lora);
        attend(shape, cache, il, pos0, n, qabs, n_head * row, lat, n_head * lora, attn_scratch_);

        // Per head, latent → value through v_b; heads concatenated for attn_output.
        const int64_t v_dim = n_head * hp_.v_head;
        float* heads = grow(heads_, n * v_dim);
        for (int64_t h = 0; h < n_head; ++h) {
            simd::matmul(L.v_b[static_cast<size_t>(h)], lat + h * lora, n_head * lora, n,
                         heads + h * hp_.v_head, v_dim, act_);
        }
        tap("kqv_out", il, heads, n * v_dim);
        simd::matmul(L.wo, heads, v_dim, n, out, n_embd, act_);
    }

    // q (n, n_head · (qk_nope + qk_rope)) of the normalised rows xn, through the q_lora
    // bottleneck or attn_q; the rope parts not yet rotated.
    float* queries(const MlaLayer& L, const float* xn, int64_t n) {
        const int64_t q_dim = hp_.n_head * (hp_.qk_nope + hp_.qk_rope);
        float* q = grow(q_, n * q_dim);
        if (L.q_lora) {
            const int64_t r = L.wq_a.n_out;
            float* qa = grow(qa_, n * r);
            simd::matmul(L.wq_a, xn, hp_.n_embd, n, qa, r, act_);
            for (int64_t t = 0; t < n; ++t)
                ops::rms_norm(qa + t * r, L.q_a_norm.data(), r, hp_.rms_eps, qa + t * r);
            simd::matmul(L.wq_b, qa, r, n, q, q_dim, act_);
        } else {
            simd::matmul(L.wq, xn, hp_.n_embd, n, q, q_dim, act_);
        }
        return q;
    }

    // Legacy files, as llama.cpp runs them without MLA: kv = attn_kv_b · rms_norm(latent) gives
    // each head's k_nope and value; the key is [k_nope | rope(k_pe)] (k_pe shared by the heads),
    // the query [q_nope | rope(q_pe)]; multi-head attention over per-head cache rows.
    void attention_decompressed(const MlaLayer& L, int64_t il, const float* xn, int64_t n,
                                int64_t pos0, const std::vector<float>& tables, KvCache& cache,
                                float* out) {
        const int64_t n_embd = hp_.n_embd, n_head = hp_.n_head;
        const int64_t nope = hp_.qk_nope, rope = hp_.qk_rope, lora = hp_.kv_lora_rank;
        const int64_t k_head = nope + rope, q_dim = n_head * k_head, v_head = hp_.v_head;
        const int64_t row = lora + rope, kvb_head = nope + v_head;

        float* q = queries(L, xn, n);
        float* kv = grow(kv_, n * row);
        simd::matmul(L.wkv_a, xn, n_embd, n, kv, row, act_);
        float* latent = grow(lat_, n * lora);  // (n, kv_lora) normalised
        for (int64_t t = 0; t < n; ++t) {
            const float* table = tables.data() + t * rope_.n_rot;
            for (int64_t h = 0; h < n_head; ++h)
                ops::rope_apply(rope_, table, q + t * q_dim + h * k_head + nope);
            ops::rope_apply(rope_, table, kv + t * row + lora);
            ops::rms_norm(kv + t * row, L.kv_a_norm.data(), lora, hp_.rms_eps, latent + t * lora);
        }
        float* kvb = grow(qcat_, n * n_head * kvb_head);  // (n, n_head, qk_nope + v_head)
        simd::matmul(L.wkv_b, latent, lora, n, kvb, n_head * kvb_head, act_);
        for (int64_t t = 0; t < n; ++t) {
            float* k = cache.k(il, pos0 + t);
            for (int64_t h = 0; h < n_head; ++h) {
                const float* src = kvb + (t * n_head + h) * kvb_head;
                std::memcpy(k + h * k_head, src, sizeof(float) * nope);
                std::memcpy(k + h * k_head + nope, kv + t * row + lora, sizeof(float) * rope);
                for (int64_t i = 0; i < v_head; ++i)
                    cache.v_col(il, h * v_head + i)[pos0 + t] = src[nope + i];
            }
        }
        AttentionShape shape;
        shape.n_head = n_head;
        shape.n_head_kv = n_head;
        shape.k_dim = k_head;
        shape.v_dim = v_head;
        shape.scale = kq_scale_;
        const int64_t v_dim = n_head * v_head;
        float* heads = grow(heads_, n * v_dim);
        attend(shape, cache, il, pos0, n, q, q_dim, heads, v_dim, attn_scratch_);
        tap("kqv_out", il, heads, n * v_dim);
        simd::matmul(L.wo, heads, v_dim, n, out, n_embd, act_);
    }

    // out (n, n_embd) = Σ_slots weight · expert(xn) + shared experts(xn).
    void moe(const MlaLayer& L, const float* xn, int64_t n, float* out) {
        const int64_t n_embd = hp_.n_embd, k = router_.n_used;
        float* logits = grow(router_logits_, n * hp_.n_expert);
        simd::matmul(L.router, xn, n_embd, n, logits, hp_.n_expert, act_);
        tap("ffn_moe_logits", kTapCurrent, logits, n * hp_.n_expert);
        ids_.resize(static_cast<size_t>(n * k));
        float* weights = grow(weights_, n * k);
        const float* bias = L.probs_bias.empty() ? nullptr : L.probs_bias.data();
        for (int64_t t = 0; t < n; ++t) {
            route(router_, logits + t * hp_.n_expert, bias, ids_.data() + t * k, weights + t * k);
        }

        // Each expert runs once over the tokens that chose it; its rows land in their slots.
        float* slots = grow(slots_, n * k * n_embd);  // (n, k, n_embd)
        std::vector<int64_t> picks;                   // token · k + slot
        for (int64_t e = 0; e < hp_.n_expert; ++e) {
            picks.clear();
            for (int64_t i = 0; i < n * k; ++i) {
                if (ids_[static_cast<size_t>(i)] == e) picks.push_back(i);
            }
            if (picks.empty()) continue;
            const int64_t m = static_cast<int64_t>(picks.size());
            float* in = grow(gather_, m * n_embd);
            for (int64_t r = 0; r < m; ++r) {
                std::memcpy(in + r * n_embd, xn + (picks[static_cast<size_t>(r)] / k) * n_embd,
                            sizeof(float) * n_embd);
            }
            float* res = grow(expert_out_, m * n_embd);
            run_ffn(L.experts[static_cast<size_t>(e)], in, m, res, ffn_, simd::Path::Experts);
            for (int64_t r = 0; r < m; ++r) {
                const int64_t slot = picks[static_cast<size_t>(r)];
                const float w = weights[slot];
                float* dst = slots + slot * n_embd;
                for (int64_t i = 0; i < n_embd; ++i) dst[i] = res[r * n_embd + i] * w;
            }
        }
        tap("ffn_moe_weighted", kTapCurrent, slots, n * k * n_embd);
        // Slots summed in selection order, then the shared experts added, as the reference does.
        for (int64_t t = 0; t < n; ++t) {
            float* o = out + t * n_embd;
            std::memcpy(o, slots + t * k * n_embd, sizeof(float) * n_embd);
            for (int64_t s = 1; s < k; ++s) ops::add(o, slots + (t * k + s) * n_embd, n_embd);
        }
        if (L.shared) {
            float* sh = grow(shared_out_, n * n_embd);
            tap("ffn_moe_out", kTapCurrent, out, n * n_embd);
            run_ffn(L.shared_ffn, xn, n, sh, ffn_);
            tap("ffn_shexp", kTapCurrent, sh, n * n_embd);
            ops::add(out, sh, n * n_embd);
        }
    }

    const Model& model_;
    const HParams& hp_;
    RouterConfig router_;
    ops::RopeParams rope_;
    float kq_scale_ = 1.0f;
    std::vector<MlaLayer> layers_;
    OutputHead head_;

    std::vector<float> x_;      // (n, n_embd) residual stream
    std::vector<float> xn_;     // (n, n_embd) normalised block input
    std::vector<float> out_;    // (n, n_embd) block output
    std::vector<float> q_;      // (n, n_head · (qk_nope + qk_rope))
    std::vector<float> qa_;     // (n, q_lora)
    std::vector<float> kv_;     // (n, kv_lora + qk_rope) before norm and rope
    std::vector<float> qcat_;   // (n, n_head, kv_lora + qk_rope) absorbed queries; legacy files:
                                // (n, n_head, qk_nope + v_head) decompressed keys and values
    std::vector<float> lat_;    // (n, n_head, kv_lora) attention-weighted latents; legacy files:
                                // (n, kv_lora) normalised latents
    std::vector<float> heads_;  // (n, n_head · v_head)
    std::vector<float> router_logits_;  // (n, n_expert)
    std::vector<int32_t> ids_;          // (n, n_used) chosen experts
    std::vector<float> weights_;        // (n, n_used) their weights
    std::vector<float> slots_;          // (n, n_used, n_embd) weighted expert outputs
    std::vector<float> gather_;         // (tokens of one expert, n_embd)
    std::vector<float> expert_out_;     // (tokens of one expert, n_embd)
    std::vector<float> shared_out_;     // (n, n_embd)
    std::vector<float> attn_scratch_;   // (kv_lora, n_kv) latents transposed
    FfnScratch ffn_;
    simd::Activations act_;
};

}  // namespace

float mla_attention_scale(const HParams& hp) {
    const float ln_factor = std::log(1.0f / rope_freq_scale(hp));
    const float attn_factor_org = rope_attn_factor(hp) * (1.0f + 0.1f * ln_factor);
    const float mscale = attn_factor_org * (1.0f + 0.1f * yarn_log_mul(hp) * ln_factor);
    return mscale * mscale / std::sqrt(static_cast<float>(hp.qk_nope + hp.qk_rope));
}

std::unique_ptr<Forward> make_deepseek2_forward(const Model& model) {
    return std::make_unique<DeepSeek2Forward>(model);
}

}  // namespace strata::arch
