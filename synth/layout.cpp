// Tensor tables per architecture. Weight scales follow the golden models' generator: matrices
// are N(0, gain² / fan_in) with gain 1 for projections that feed the residual stream or the FFN
// and 1.5 for Q / K / latent projections, so that activations keep unit scale through the
// layers and attention logits stay well inside softmax's useful range.
#include "synth/layout.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "runtime/error.h"

namespace strata::synth {
namespace {

constexpr uint64_t kAlignment = 32;  // GGUF's default: every tensor is padded to it

uint64_t padded(uint64_t n) {
    return (n + kAlignment - 1) / kAlignment * kAlignment;
}

class TableBuilder {
  public:
    explicit TableBuilder(const Spec& spec) : s_(spec), hp_(spec.hp) {}

    std::vector<TensorPlan> build() {
        if (s_.llama3 && hp_.arch == Arch::Llama) {
            add("rope_freqs.weight", {hp_.n_rot / 2}, Init::RopeFreqs, 0.0f);
        }
        // Tied embeddings double as the output projection, so they take the output's scale.
        add("token_embd.weight", {hp_.n_embd, hp_.n_vocab}, Init::Normal,
            s_.tied ? gain(3.0f, hp_.n_embd) : 1.0f);
        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            layer_ = il;
            if (hp_.arch == Arch::DeepSeek2) {
                deepseek2_layer(il);
            } else {
                dense_layer(il);
            }
        }
        layer_ = -1;
        norm("output_norm.weight", hp_.n_embd);
        if (!s_.tied)
            add("output.weight", {hp_.n_embd, hp_.n_vocab}, Init::Normal, gain(3.0f, hp_.n_embd));
        return std::move(out_);
    }

  private:
    static float gain(float g, int64_t fan_in) { return g / std::sqrt(static_cast<float>(fan_in)); }

    void add(std::string name, std::vector<int64_t> ne, Init init, float scale) {
        // Overrides can ask for anything; sizes must stay far from int64 overflow (2^62).
        int64_t n = 1;
        for (int64_t d : ne) {
            if (d <= 0 || __builtin_mul_overflow(n, d, &n) || n > (int64_t{1} << 62))
                throw UsageError(fmt::format("tensor '{}' would have an impossible size", name));
        }
        TensorPlan t;
        t.name = std::move(name);
        t.ne = std::move(ne);
        t.layer = layer_;
        t.init = init;
        t.scale = scale;
        out_.push_back(std::move(t));
    }
    std::string blk(std::string_view what) const {
        return fmt::format("blk.{}.{}.weight", layer_, what);
    }
    void norm(std::string name, int64_t n) { add(std::move(name), {n}, Init::NormWeight, 0.1f); }
    // A projection [n_in, n_out] drawn with std gain / sqrt(n_in).
    void matrix(std::string_view what, int64_t n_in, int64_t n_out, float g) {
        add(blk(what), {n_in, n_out}, Init::Normal, gain(g, n_in));
    }

    void dense_layer(int64_t il) {
        const int64_t q_dim = hp_.n_head * hp_.head_dim, kv_dim = hp_.n_head_kv * hp_.head_dim;
        norm(blk("attn_norm"), hp_.n_embd);
        matrix("attn_q", hp_.n_embd, q_dim, 1.5f);
        if (s_.qkv_bias) add(fmt::format("blk.{}.attn_q.bias", il), {q_dim}, Init::Normal, 0.5f);
        matrix("attn_k", hp_.n_embd, kv_dim, 1.5f);
        if (s_.qkv_bias) add(fmt::format("blk.{}.attn_k.bias", il), {kv_dim}, Init::Normal, 0.5f);
        matrix("attn_v", hp_.n_embd, kv_dim, 1.0f);
        if (s_.qkv_bias) add(fmt::format("blk.{}.attn_v.bias", il), {kv_dim}, Init::Normal, 0.1f);
        matrix("attn_output", q_dim, hp_.n_embd, 1.0f);
        dense_ffn(hp_.n_ff);
    }

    void dense_ffn(int64_t n_ff) {
        norm(blk("ffn_norm"), hp_.n_embd);
        matrix("ffn_gate", hp_.n_embd, n_ff, 1.0f);
        matrix("ffn_up", hp_.n_embd, n_ff, 1.0f);
        matrix("ffn_down", n_ff, hp_.n_embd, 1.0f);
    }

    void deepseek2_layer(int64_t il) {
        const int64_t q_head = hp_.qk_nope + hp_.qk_rope;
        norm(blk("attn_norm"), hp_.n_embd);
        if (hp_.q_lora_rank > 0) {
            norm(blk("attn_q_a_norm"), hp_.q_lora_rank);
            matrix("attn_q_a", hp_.n_embd, hp_.q_lora_rank, 1.0f);
            matrix("attn_q_b", hp_.q_lora_rank, hp_.n_head * q_head, 1.5f);
        } else {
            matrix("attn_q", hp_.n_embd, hp_.n_head * q_head, 1.5f);
        }
        norm(blk("attn_kv_a_norm"), hp_.kv_lora_rank);
        matrix("attn_kv_a_mqa", hp_.n_embd, hp_.kv_lora_rank + hp_.qk_rope, 1.5f);
        // The split tensors are views of one attn_kv_b [kv_lora, n_head·(nope+v)], drawn with
        // that matrix's scale, so the legacy and the split layout hold the same weights.
        const float kv_b_scale = gain(1.5f, hp_.kv_lora_rank);
        if (hp_.mla_split) {
            add(blk("attn_k_b"), {hp_.qk_nope, hp_.kv_lora_rank, hp_.n_head}, Init::MlaK,
                kv_b_scale);
            add(blk("attn_v_b"), {hp_.kv_lora_rank, hp_.v_head, hp_.n_head}, Init::MlaV,
                kv_b_scale);
        } else {
            add(blk("attn_kv_b"), {hp_.kv_lora_rank, hp_.n_head * (hp_.qk_nope + hp_.v_head)},
                Init::Normal, kv_b_scale);
        }
        matrix("attn_output", hp_.n_head * hp_.v_head, hp_.n_embd, 1.0f);
        if (!hp_.is_moe_layer(il)) {
            dense_ffn(hp_.n_ff);
            return;
        }
        norm(blk("ffn_norm"), hp_.n_embd);
        matrix("ffn_gate_inp", hp_.n_embd, hp_.n_expert, 2.0f);
        if (s_.exp_probs_b)
            add(fmt::format("blk.{}.exp_probs_b.bias", il), {hp_.n_expert}, Init::Normal, 0.3f);
        // Stacked experts: the expert index is the outermost dimension.
        const float g_in = gain(1.0f, hp_.n_embd), g_down = gain(1.0f, hp_.n_ff_exp);
        add(blk("ffn_gate_exps"), {hp_.n_embd, hp_.n_ff_exp, hp_.n_expert}, Init::Normal, g_in);
        add(blk("ffn_up_exps"), {hp_.n_embd, hp_.n_ff_exp, hp_.n_expert}, Init::Normal, g_in);
        add(blk("ffn_down_exps"), {hp_.n_ff_exp, hp_.n_embd, hp_.n_expert}, Init::Normal, g_down);
        if (hp_.n_expert_shared > 0) {
            const int64_t ff_sh = hp_.n_ff_exp * hp_.n_expert_shared;
            matrix("ffn_gate_shexp", hp_.n_embd, ff_sh, 1.0f);
            matrix("ffn_up_shexp", hp_.n_embd, ff_sh, 1.0f);
            matrix("ffn_down_shexp", ff_sh, hp_.n_embd, 1.0f);
        }
    }

    const Spec& s_;
    const HParams& hp_;
    int64_t layer_ = -1;
    std::vector<TensorPlan> out_;
};

}  // namespace

int64_t TensorPlan::n_elements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
}

recipe::ModelFacts model_facts(const Spec& spec) {
    const HParams& hp = spec.hp;
    recipe::ModelFacts f;
    f.arch = hp.arch;
    f.n_layer = hp.n_layer;
    f.n_head = hp.n_head;
    f.has_output = !spec.tied;
    if (hp.arch == Arch::DeepSeek2) {
        // head_count_kv as written: 1 for absorbed MLA, every head in legacy files.
        f.n_head_kv = hp.mla_split ? 1 : hp.n_head;
        f.n_expert = hp.n_dense_lead < hp.n_layer ? hp.n_expert : 0;
    } else {
        f.n_head_kv = hp.n_head_kv;
    }
    return f;
}

std::vector<TensorPlan> plan_tensors(const Spec& spec) {
    std::vector<TensorPlan> tensors = TableBuilder(spec).build();
    const recipe::ModelFacts facts = model_facts(spec);
    for (TensorPlan& t : tensors) {
        const recipe::Choice c = recipe::choose_type(facts, spec.target, t.name, t.ne);
        t.type = c.type;
        t.wanted = c.wanted;
        t.bytes = static_cast<uint64_t>(t.n_rows()) * quant::row_bytes(t.type, t.ne[0]);
    }
    // Quantized files are what llama-quantize writes from the converter's file, in its order.
    if (spec.target.base != quant::Type::F32) {
        std::stable_sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
            return recipe::quantize_order_less(a.name, b.name);
        });
    }
    return tensors;
}

uint32_t assign_shards(std::vector<TensorPlan>& tensors, uint64_t max_bytes) {
    uint32_t shard = 0;
    uint64_t in_shard = 0;
    size_t count = 0;
    for (TensorPlan& t : tensors) {
        const uint64_t size = padded(t.bytes);
        if (max_bytes > 0 && count > 0 && in_shard + size > max_bytes) {
            ++shard;
            in_shard = 0;
            count = 0;
        }
        t.shard = shard;
        in_shard += size;
        ++count;
    }
    return shard + 1;
}

}  // namespace strata::synth
