// Tiny random models of any shape for the inference tests, written as GGUF files with the keys,
// tensor names and shapes convert_hf_to_gguf.py writes for each family (independent of
// `strata synth`, so that a mistake shared by the writer and the runtime cannot hide).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "runtime/gguf.h"
#include "runtime/model.h"
#include "simd/quant.h"

namespace strata::test {

struct TinySpec {
    Arch arch = Arch::Llama;
    uint64_t seed = 1;
    int64_t n_vocab = 97;
    int64_t n_embd = 64;
    int64_t n_layer = 2;
    int64_t n_head = 4;
    int64_t n_head_kv = 2;
    int64_t head_dim = 16;
    int64_t n_rot = 0;  // 0: head_dim (llama / qwen2)
    int64_t n_ff = 48;
    float rms_eps = 1e-5f;
    float rope_base = 10000.0f;
    bool tied = false;
    bool biases = false;        // q/k/v biases (always on for qwen2)
    bool llama3_freqs = false;  // rope_freqs.weight
    float embd_scale = 1.0f;    // token embedding magnitude (tiny values make the eps matter)
    // YaRN (any arch): factor > 1 turns it on.
    float yarn_factor = 0.0f;
    int64_t yarn_orig_ctx = 64;
    float yarn_log_mul = 0.1f;  // as the converter stores it (0.1 · mscale_all_dim)
    // deepseek2
    int64_t q_lora = 0;
    int64_t kv_lora = 32;
    int64_t qk_nope = 16;
    int64_t qk_rope = 8;
    int64_t v_head = 16;
    int64_t n_dense_lead = 1;
    int64_t n_expert = 6;
    int64_t n_expert_used = 2;
    int64_t n_expert_shared = 1;
    int64_t n_ff_exp = 32;
    int64_t n_group = 1;
    int64_t n_group_used = 1;
    Gating gating = Gating::Softmax;
    bool weights_norm = false;
    float weights_scale = 1.0f;
    bool probs_bias = false;
    bool legacy_kv_b = false;  // attn_kv_b instead of attn_k_b / attn_v_b
    bool f32_kv_b = false;     // keep attn_k_b / attn_v_b / attn_kv_b in F32 whatever `type` is
    // Type of the 2-D weights (router excepted); rows that do not fit its blocks fall back to
    // Q8_0, then F32, as llama-quantize falls back.
    quant::Type type = quant::Type::F32;
    std::string name = "Strata Tiny Test";
};

namespace tiny_detail {

inline const char* arch_key(Arch a) {
    return a == Arch::Llama ? "llama" : a == Arch::Qwen2 ? "qwen2" : "deepseek2";
}

class Builder {
  public:
    Builder(const TinySpec& s) : s_(s), rng_(s.seed) {}

    gguf::Writer& writer() { return w_; }

    std::vector<float> normal(size_t n, float scale) {
        std::normal_distribution<float> d(0.0f, scale);
        std::vector<float> v(n);
        for (float& x : v) x = d(rng_);
        return v;
    }

    // A 2-D (or stacked 3-D) weight [n_in, rows...], values ~ N(0, 1/n_in).
    void matrix(const std::string& name, std::vector<int64_t> ne, bool keep_f32 = false,
                float gain = 1.0f) {
        int64_t n = 1;
        for (int64_t d : ne) n *= d;
        const std::vector<float> v =
            normal(static_cast<size_t>(n), gain / std::sqrt(static_cast<float>(ne[0])));
        quant::Type t = keep_f32 ? quant::Type::F32 : s_.type;
        if (ne[0] % quant::traits(t).block_size != 0) t = quant::Type::Q8_0;
        if (ne[0] % quant::traits(t).block_size != 0) t = quant::Type::F32;
        add(name, t, std::move(ne), v);
    }

    void vec(const std::string& name, int64_t n, float center, float spread) {
        std::vector<float> v = normal(static_cast<size_t>(n), spread);
        for (float& x : v) x += center;
        add(name, quant::Type::F32, {n}, v);
    }

    void add(const std::string& name, quant::Type t, std::vector<int64_t> ne,
             const std::vector<float>& v) {
        std::vector<uint8_t> bytes(quant::row_bytes(t, ne[0]) * (v.size() / ne[0]));
        const size_t rb = quant::row_bytes(t, ne[0]);
        for (size_t r = 0; r < v.size() / ne[0]; ++r)
            quant::traits(t).quantize(v.data() + r * ne[0], bytes.data() + r * rb, ne[0]);
        data_.push_back(std::move(bytes));
        w_.add_tensor(name, t, std::move(ne), data_.back());
    }

  private:
    const TinySpec& s_;
    std::mt19937_64 rng_;
    gguf::Writer w_;
    std::vector<std::vector<uint8_t>> data_;  // tensor bytes, alive until write()
};

inline std::string blk(int64_t il, const char* name) {
    return "blk." + std::to_string(il) + "." + name;
}

}  // namespace tiny_detail

// Writes the model to `path` (overwriting it).
inline void write_tiny_model(const TinySpec& s, const std::filesystem::path& path) {
    using tiny_detail::blk;
    tiny_detail::Builder b(s);
    gguf::Writer& w = b.writer();
    const std::string a = tiny_detail::arch_key(s.arch);
    const auto key = [&](const char* k) { return a + "." + k; };
    w.set_str("general.architecture", a);
    w.set_str("general.name", s.name);
    w.set_u32(key("block_count"), static_cast<uint32_t>(s.n_layer));
    w.set_u32(key("context_length"), 4096);
    w.set_u32(key("embedding_length"), static_cast<uint32_t>(s.n_embd));
    w.set_u32(key("attention.head_count"), static_cast<uint32_t>(s.n_head));
    w.set_f32(key("attention.layer_norm_rms_epsilon"), s.rms_eps);
    w.set_f32(key("rope.freq_base"), s.rope_base);
    if (s.yarn_factor > 1.0f) {
        w.set_str(key("rope.scaling.type"), "yarn");
        w.set_f32(key("rope.scaling.factor"), s.yarn_factor);
        w.set_u32(key("rope.scaling.original_context_length"),
                  static_cast<uint32_t>(s.yarn_orig_ctx));
        if (s.arch == Arch::DeepSeek2)
            w.set_f32(key("rope.scaling.yarn_log_multiplier"), s.yarn_log_mul);
    }

    // Embedding rows of RMS ~ embd_scale (the 1/sqrt(n_embd) of matrix() undone).
    b.matrix("token_embd.weight", {s.n_embd, s.n_vocab}, false,
             s.embd_scale * std::sqrt(static_cast<float>(s.n_embd)));
    b.vec("output_norm.weight", s.n_embd, 1.0f, 0.1f);
    if (!s.tied) b.matrix("output.weight", {s.n_embd, s.n_vocab});

    if (s.arch != Arch::DeepSeek2) {
        const int64_t rot = s.n_rot ? s.n_rot : s.head_dim;
        w.set_u32(key("attention.head_count_kv"), static_cast<uint32_t>(s.n_head_kv));
        w.set_u32(key("feed_forward_length"), static_cast<uint32_t>(s.n_ff));
        w.set_u32(key("rope.dimension_count"), static_cast<uint32_t>(rot));
        if (s.head_dim * s.n_head != s.n_embd) {
            w.set_u32(key("attention.key_length"), static_cast<uint32_t>(s.head_dim));
            w.set_u32(key("attention.value_length"), static_cast<uint32_t>(s.head_dim));
        }
        if (s.llama3_freqs) {
            // Factors like llama3's: 1 for high frequencies up to 8 for low ones.
            std::vector<float> f(static_cast<size_t>(rot / 2));
            for (size_t i = 0; i < f.size(); ++i)
                f[i] = 1.0f + 7.0f * static_cast<float>(i) / static_cast<float>(f.size());
            b.add("rope_freqs.weight", quant::Type::F32, {rot / 2}, f);
        }
        const int64_t q_dim = s.n_head * s.head_dim, kv_dim = s.n_head_kv * s.head_dim;
        for (int64_t il = 0; il < s.n_layer; ++il) {
            b.vec(blk(il, "attn_norm.weight"), s.n_embd, 1.0f, 0.1f);
            b.matrix(blk(il, "attn_q.weight"), {s.n_embd, q_dim});
            b.matrix(blk(il, "attn_k.weight"), {s.n_embd, kv_dim});
            b.matrix(blk(il, "attn_v.weight"), {s.n_embd, kv_dim});
            if (s.biases || s.arch == Arch::Qwen2) {
                b.vec(blk(il, "attn_q.bias"), q_dim, 0.0f, 0.1f);
                b.vec(blk(il, "attn_k.bias"), kv_dim, 0.0f, 0.1f);
                b.vec(blk(il, "attn_v.bias"), kv_dim, 0.0f, 0.1f);
            }
            b.matrix(blk(il, "attn_output.weight"), {q_dim, s.n_embd});
            b.vec(blk(il, "ffn_norm.weight"), s.n_embd, 1.0f, 0.1f);
            b.matrix(blk(il, "ffn_gate.weight"), {s.n_embd, s.n_ff});
            b.matrix(blk(il, "ffn_up.weight"), {s.n_embd, s.n_ff});
            b.matrix(blk(il, "ffn_down.weight"), {s.n_ff, s.n_embd});
        }
        w.write(path.string());
        return;
    }

    // deepseek2
    const int64_t q_head = s.qk_nope + s.qk_rope;
    w.set_u32(key("attention.head_count_kv"), s.legacy_kv_b ? static_cast<uint32_t>(s.n_head) : 1);
    w.set_u32(key("feed_forward_length"), static_cast<uint32_t>(s.n_ff));
    w.set_u32(key("attention.q_lora_rank"), static_cast<uint32_t>(s.q_lora));
    w.set_u32(key("attention.kv_lora_rank"), static_cast<uint32_t>(s.kv_lora));
    w.set_u32(key("rope.dimension_count"), static_cast<uint32_t>(s.qk_rope));
    if (s.legacy_kv_b) {
        w.set_u32(key("attention.key_length"), static_cast<uint32_t>(q_head));
        w.set_u32(key("attention.value_length"), static_cast<uint32_t>(s.v_head));
    } else {
        w.set_u32(key("attention.key_length"), static_cast<uint32_t>(s.kv_lora + s.qk_rope));
        w.set_u32(key("attention.value_length"), static_cast<uint32_t>(s.kv_lora));
        w.set_u32(key("attention.key_length_mla"), static_cast<uint32_t>(q_head));
        w.set_u32(key("attention.value_length_mla"), static_cast<uint32_t>(s.v_head));
    }
    w.set_u32(key("leading_dense_block_count"), static_cast<uint32_t>(s.n_dense_lead));
    w.set_u32(key("expert_count"), static_cast<uint32_t>(s.n_expert));
    w.set_u32(key("expert_used_count"), static_cast<uint32_t>(s.n_expert_used));
    w.set_u32(key("expert_shared_count"), static_cast<uint32_t>(s.n_expert_shared));
    w.set_u32(key("expert_feed_forward_length"), static_cast<uint32_t>(s.n_ff_exp));
    w.set_u32(key("expert_group_count"), static_cast<uint32_t>(s.n_group));
    w.set_u32(key("expert_group_used_count"), static_cast<uint32_t>(s.n_group_used));
    w.set_u32(key("expert_gating_func"), s.gating == Gating::Sigmoid ? 2 : 1);
    w.set_bool(key("expert_weights_norm"), s.weights_norm);
    w.set_f32(key("expert_weights_scale"), s.weights_scale);
    for (int64_t il = 0; il < s.n_layer; ++il) {
        b.vec(blk(il, "attn_norm.weight"), s.n_embd, 1.0f, 0.1f);
        if (s.q_lora > 0) {
            b.matrix(blk(il, "attn_q_a.weight"), {s.n_embd, s.q_lora});
            b.vec(blk(il, "attn_q_a_norm.weight"), s.q_lora, 1.0f, 0.1f);
            b.matrix(blk(il, "attn_q_b.weight"), {s.q_lora, s.n_head * q_head});
        } else {
            b.matrix(blk(il, "attn_q.weight"), {s.n_embd, s.n_head * q_head});
        }
        b.matrix(blk(il, "attn_kv_a_mqa.weight"), {s.n_embd, s.kv_lora + s.qk_rope});
        b.vec(blk(il, "attn_kv_a_norm.weight"), s.kv_lora, 1.0f, 0.1f);
        if (s.legacy_kv_b) {
            b.matrix(blk(il, "attn_kv_b.weight"), {s.kv_lora, s.n_head * (s.qk_nope + s.v_head)},
                     s.f32_kv_b);
        } else {
            b.matrix(blk(il, "attn_k_b.weight"), {s.qk_nope, s.kv_lora, s.n_head}, s.f32_kv_b);
            b.matrix(blk(il, "attn_v_b.weight"), {s.kv_lora, s.v_head, s.n_head}, s.f32_kv_b);
        }
        b.matrix(blk(il, "attn_output.weight"), {s.n_head * s.v_head, s.n_embd});
        b.vec(blk(il, "ffn_norm.weight"), s.n_embd, 1.0f, 0.1f);
        if (il < s.n_dense_lead) {
            b.matrix(blk(il, "ffn_gate.weight"), {s.n_embd, s.n_ff});
            b.matrix(blk(il, "ffn_up.weight"), {s.n_embd, s.n_ff});
            b.matrix(blk(il, "ffn_down.weight"), {s.n_ff, s.n_embd});
            continue;
        }
        b.matrix(blk(il, "ffn_gate_inp.weight"), {s.n_embd, s.n_expert}, /*keep_f32=*/true);
        if (s.probs_bias) b.vec(blk(il, "exp_probs_b.bias"), s.n_expert, 0.0f, 0.05f);
        b.matrix(blk(il, "ffn_gate_exps.weight"), {s.n_embd, s.n_ff_exp, s.n_expert});
        b.matrix(blk(il, "ffn_up_exps.weight"), {s.n_embd, s.n_ff_exp, s.n_expert});
        b.matrix(blk(il, "ffn_down_exps.weight"), {s.n_ff_exp, s.n_embd, s.n_expert});
        if (s.n_expert_shared > 0) {
            const int64_t sh = s.n_ff_exp * s.n_expert_shared;
            b.matrix(blk(il, "ffn_gate_shexp.weight"), {s.n_embd, sh});
            b.matrix(blk(il, "ffn_up_shexp.weight"), {s.n_embd, sh});
            b.matrix(blk(il, "ffn_down_shexp.weight"), {sh, s.n_embd});
        }
    }
    w.write(path.string());
}

inline Model load_tiny_model(const TinySpec& s, const std::filesystem::path& path) {
    write_tiny_model(s, path);
    return Model::load(gguf::File::open(path.string()));
}

}  // namespace strata::test
