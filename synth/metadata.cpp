// Key order per family, as the golden models (written like convert_hf_to_gguf.py) have it.
#include "synth/metadata.h"

#include <cmath>

#include <fmt/format.h>

#include "synth/vocab.h"

namespace strata::synth {
namespace {

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION

uint32_t u32(int64_t v) {
    return static_cast<uint32_t>(v);
}

class KeyWriter {
  public:
    KeyWriter(gguf::Writer& out, const Spec& spec)
        : out_(out), s_(spec), hp_(spec.hp), arch_(arch_name(spec.hp.arch)) {}

    void run(int64_t n_params) {
        out_.set_str("general.architecture", std::string(arch_));
        out_.set_str("general.type", "model");
        out_.set_str("general.name", s_.name);
        // Real-model shapes carry the header the tables were made with: no size label.
        if (!s_.reduced_tokenizer) out_.set_str("general.size_label", size_label(n_params));
        key_u32("block_count", hp_.n_layer);
        key_u32("context_length", hp_.n_ctx_train);
        key_u32("embedding_length", hp_.n_embd);
        key_u32("feed_forward_length", hp_.n_ff);
        key_u32("attention.head_count", hp_.n_head);
        if (hp_.arch == Arch::DeepSeek2) {
            deepseek2();
        } else {
            dense();
        }
        write_tokenizer(out_, s_);
        out_.set_u32("general.quantization_version", kQuantizationVersion);
        // llama-quantize sets both keys again, which moves them to the end.
        const uint32_t file_type = recipe::file_type(s_.target);
        if (s_.target.base != quant::Type::F32) {
            out_.remove("general.quantization_version");
            out_.remove("general.file_type");
            out_.set_u32("general.quantization_version", kQuantizationVersion);
        }
        out_.set_u32("general.file_type", file_type);
    }

  private:
    std::string key(std::string_view k) const { return fmt::format("{}.{}", arch_, k); }
    void key_u32(std::string_view k, int64_t v) { out_.set_u32(key(k), u32(v)); }
    void key_f32(std::string_view k, float v) { out_.set_f32(key(k), v); }

    void dense() {
        key_u32("attention.head_count_kv", hp_.n_head_kv);
        key_f32("rope.freq_base", hp_.rope_base);
        key_f32("attention.layer_norm_rms_epsilon", hp_.rms_eps);
        out_.set_u32("general.file_type", recipe::file_type(s_.target));
        if (hp_.arch == Arch::Llama) {
            key_u32("vocab_size", hp_.n_vocab);
            key_u32("rope.dimension_count", hp_.n_rot);
        }
        // Head sizes other than n_embd / n_head are spelled out (head_dim in the HF config).
        if (hp_.head_dim * hp_.n_head != hp_.n_embd) {
            key_u32("attention.key_length", hp_.head_dim);
            key_u32("attention.value_length", hp_.head_dim);
        }
    }

    void deepseek2() {
        // Absorbed MLA (split k_b / v_b) caches one latent "head"; legacy files store every head.
        key_u32("attention.head_count_kv", hp_.mla_split ? 1 : hp_.n_head);
        out_.set_str(key("rope.scaling.type"), "yarn");
        key_f32("rope.scaling.factor", hp_.rope_factor);
        key_u32("rope.scaling.original_context_length", hp_.rope_orig_ctx);
        key_f32("rope.scaling.yarn_beta_fast", hp_.yarn_beta_fast);
        key_f32("rope.scaling.yarn_beta_slow", hp_.yarn_beta_slow);
        key_f32("rope.freq_base", hp_.rope_base);
        key_f32("attention.layer_norm_rms_epsilon", hp_.rms_eps);
        key_u32("expert_count", hp_.n_expert);
        key_u32("expert_used_count", hp_.n_expert_used);
        if (s_.routing_keys) {
            key_u32("expert_group_count", hp_.n_group);
            key_u32("expert_group_used_count", hp_.n_group_used);
            key_u32("expert_gating_func", static_cast<int64_t>(hp_.gating));
        }
        out_.set_u32("general.file_type", recipe::file_type(s_.target));
        key_u32("leading_dense_block_count", hp_.n_dense_lead);
        key_u32("vocab_size", hp_.n_vocab);
        // A real config without q compression has q_lora_rank null, which the converter leaves
        // out; the golden tiny models write 0. Both load the same.
        if (hp_.q_lora_rank > 0 || !s_.reduced_tokenizer)
            key_u32("attention.q_lora_rank", hp_.q_lora_rank);
        key_u32("attention.kv_lora_rank", hp_.kv_lora_rank);
        if (hp_.mla_split) {
            key_u32("attention.key_length", hp_.kv_lora_rank + hp_.qk_rope);
            key_u32("attention.value_length", hp_.kv_lora_rank);
            key_u32("attention.key_length_mla", hp_.qk_nope + hp_.qk_rope);
            key_u32("attention.value_length_mla", hp_.v_head);
        } else {
            key_u32("attention.key_length", hp_.qk_nope + hp_.qk_rope);
            key_u32("attention.value_length", hp_.v_head);
        }
        key_u32("expert_feed_forward_length", hp_.n_ff_exp);
        key_u32("expert_shared_count", hp_.n_expert_shared);
        key_f32("expert_weights_scale", hp_.weights_scale);
        if (hp_.weights_norm) out_.set_bool(key("expert_weights_norm"), true);
        key_u32("rope.dimension_count", hp_.qk_rope);
        key_f32("rope.scaling.yarn_log_multiplier", hp_.yarn_log_mul);
    }

    gguf::Writer& out_;
    const Spec& s_;
    const HParams& hp_;
    std::string_view arch_;
};

}  // namespace

std::string size_label(int64_t n_params) {
    static const char* const kUnits[] = {"", "K", "M", "B", "T"};
    double v = static_cast<double>(n_params);
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        ++u;
    }
    // One decimal below 10 ("1.5B"), none above ("671B"), as gguf-py rounds.
    return v < 10.0 ? fmt::format("{:.1f}{}", v, kUnits[u])
                    : fmt::format("{:.0f}{}", std::floor(v + 0.5), kUnits[u]);
}

void write_metadata(gguf::Writer& out, const Spec& spec, int64_t n_params) {
    KeyWriter(out, spec).run(n_params);
}

}  // namespace strata::synth
