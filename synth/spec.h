// What `strata synth` writes: a model's hyperparameters, the conventions its file follows and
// how it is quantized. Presets give golden-like tiny models, a few-GB benchmark model and the
// exact shapes of real models (shape-only: a real header, the data left a hole).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model.h"
#include "synth/quant_recipe.h"

namespace strata::synth {

// Llama 3's RoPE frequency correction, stored as rope_freqs.weight (one factor per pair).
struct Llama3Rope {
    float factor = 8.0f;
    float low_freq_factor = 1.0f;
    float high_freq_factor = 4.0f;
    int64_t orig_ctx = 8192;
};

// How tensor data is made.
enum class Fill {
    Auto,      // Random for models past kRandomFillFromBytes, Quantize below
    Quantize,  // floats drawn, then quantized by the reference quantizer (llama-quantize's output)
    Random,    // random valid quantized blocks written directly (synth/random_blocks.h): disk speed
};
inline constexpr uint64_t kRandomFillFromBytes = 4'000'000'000;

struct Spec {
    std::string preset;
    std::string name;       // general.name
    HParams hp;             // arch, dims, RoPE, MLA and MoE numbers; hp.n_vocab = token_embd rows
    bool tied = false;      // no output.weight: token_embd is also the output
    bool qkv_bias = false;  // qwen2: Q/K/V biases
    std::optional<Llama3Rope> llama3;  // llama: rope_freqs.weight
    bool exp_probs_b = false;          // deepseek2: per-expert selection bias
    bool routing_keys = true;          // deepseek2: gating-function and group keys (legacy: no)
    bool shape_only = false;           // header only; the data section is a hole
    bool reduced_tokenizer = false;    // tokenizer keys model/pre/bos/eos only (real-model shapes)
    std::string pre;                   // tokenizer.ggml.pre
    int64_t bos = 0, eos = 0;  // reduced tokenizer's ids (full vocabularies place their own)
    recipe::Target target;
    uint64_t seed = 0;
    uint64_t split_max_bytes = 0;  // llama-gguf-split --split-max-size; 0: one file
    Fill fill = Fill::Auto;
};

// Sets how the data is made. A shape-only preset given an explicit fill becomes a model with data
// and the family's full tokenizer (a loadable, runnable copy of the real model's shapes).
void set_fill(Spec& spec, Fill fill);

// "auto", "quantize", "random" → Fill; nullopt for other names.
std::optional<Fill> parse_fill(std::string_view name);
std::string_view fill_name(Fill fill);

// Shape changes for the tiny and bench presets (shape-only presets keep their exact tables).
struct Overrides {
    std::optional<int64_t> layers, embd, heads, heads_kv, head_dim, ff, vocab, ctx;
    std::optional<int64_t> q_lora, kv_lora, qk_nope, qk_rope, v_head;
    std::optional<int64_t> experts, experts_used, shared_experts, ff_exp, dense_layers;
    std::optional<int64_t> groups, groups_used;
    std::optional<std::string> gating;  // "softmax" or "sigmoid"
    std::optional<bool> tied;
    bool legacy_mla = false;  // attn_kv_b instead of attn_k_b / attn_v_b
};

struct PresetInfo {
    std::string_view name;
    Arch arch;
    bool shape_only;
    std::string_view about;
};
// Every preset, in the order `strata synth --help` lists them.
const std::vector<PresetInfo>& presets();

// "llama" → Arch::Llama; nullopt for other names.
std::optional<Arch> parse_arch(std::string_view name);

// The preset's spec with its default type (F32 for tiny, Q4_K_M otherwise) and seed 0. `arch`
// picks the family of tiny / bench and must match a shape-only preset's. Throws UsageError for
// unknown names and mismatches.
Spec make_spec(std::string_view preset, std::optional<Arch> arch);

// Applies shape overrides, then checks the result; throws UsageError naming the option.
void apply(Spec& spec, const Overrides& overrides);

// Checks that the numbers make a model Strata (and llama.cpp) can load; throws UsageError.
void check(const Spec& spec);

}  // namespace strata::synth
