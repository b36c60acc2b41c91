// Presets and overrides. The tiny presets have the golden models' dimensions; the shape-only
// presets carry the HF config numbers of the real models (golden/tables/*.json source_config).
#include "synth/spec.h"

#include <fmt/format.h>

#include "runtime/error.h"
#include "synth/vocab.h"

namespace strata::synth {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 24;  // no real model has a dimension near this
constexpr int64_t kMaxLayers = 4096;           // what the model loader accepts
constexpr int64_t kBig40Layers = 13;           // big40: 1 dense + 12 MoE blocks

// ---------------------------------------------------------------------------------------------
// Families.

Spec llama_base() {
    Spec s;
    s.hp.arch = Arch::Llama;
    s.hp.n_ctx_train = 131072;
    s.hp.rope_base = 500000.0f;
    s.hp.rms_eps = 1e-5f;
    s.llama3 = Llama3Rope{};
    s.pre = "llama-bpe";
    s.bos = 128000;  // <|begin_of_text|>
    s.eos = 128001;  // <|end_of_text|>, as the R1 distills' config has it
    return s;
}

Spec qwen2_base() {
    Spec s;
    s.hp.arch = Arch::Qwen2;
    s.hp.n_ctx_train = 131072;
    s.hp.rope_base = 10000.0f;
    s.hp.rms_eps = 1e-6f;
    s.qkv_bias = true;
    s.pre = "deepseek-r1-qwen";
    s.bos = 151646;  // <｜begin▁of▁sentence｜> of the R1 distills
    s.eos = 151643;
    return s;
}

// DeepSeek-V3 / R1: MLA with q compression, sigmoid routing over expert groups with a selection
// bias, YaRN to 160K.
Spec deepseek2_base() {
    Spec s;
    HParams& hp = s.hp;
    hp.arch = Arch::DeepSeek2;
    hp.n_ctx_train = 163840;
    hp.rope_base = 10000.0f;
    hp.rms_eps = 1e-6f;
    hp.n_head_kv = 1;
    hp.mla_split = true;
    hp.scaling = RopeScaling::Yarn;
    hp.rope_factor = 40.0f;
    hp.rope_orig_ctx = 4096;
    hp.yarn_beta_fast = 32.0f;
    hp.yarn_beta_slow = 1.0f;
    hp.yarn_log_mul = 0.1f;  // 0.1 · mscale_all_dim (1.0)
    hp.gating = Gating::Sigmoid;
    hp.weights_norm = true;
    hp.weights_scale = 2.5f;
    s.exp_probs_b = true;
    s.pre = "deepseek-v3";
    s.bos = 0;
    s.eos = 1;
    return s;
}

// DeepSeek-V2-Lite: no q compression, softmax routing without groups or bias.
void make_lite(Spec& s) {
    HParams& hp = s.hp;
    hp.q_lora_rank = 0;
    hp.gating = Gating::Softmax;
    hp.n_group = hp.n_group_used = 1;
    hp.weights_norm = false;
    hp.weights_scale = 1.0f;
    hp.yarn_log_mul = 0.0707f;  // 0.1 · mscale_all_dim (0.707)
    s.exp_probs_b = false;
}

void set_dense_dims(HParams& hp, int64_t vocab, int64_t embd, int64_t layers, int64_t heads,
                    int64_t heads_kv, int64_t ff) {
    hp.n_vocab = vocab;
    hp.n_embd = embd;
    hp.n_layer = layers;
    hp.n_head = heads;
    hp.n_head_kv = heads_kv;
    hp.head_dim = embd / heads;
    hp.n_rot = hp.head_dim;
    hp.n_ff = ff;
}

struct MlaDims {
    int64_t q_lora, kv_lora, nope, rope, v;
};
struct MoeDims {
    int64_t dense, experts, used, shared, ff_exp, groups, groups_used;
};

void set_deepseek2_dims(HParams& hp, int64_t vocab, int64_t embd, int64_t layers, int64_t heads,
                        int64_t ff, MlaDims mla, MoeDims moe) {
    hp.n_vocab = vocab;
    hp.n_embd = embd;
    hp.n_layer = layers;
    hp.n_head = heads;
    hp.n_ff = ff;
    hp.q_lora_rank = mla.q_lora;
    hp.kv_lora_rank = mla.kv_lora;
    hp.qk_nope = mla.nope;
    hp.qk_rope = mla.rope;
    hp.n_rot = mla.rope;
    hp.v_head = mla.v;
    hp.head_dim = mla.nope + mla.rope;
    hp.n_dense_lead = moe.dense;
    hp.n_expert = moe.experts;
    hp.n_expert_used = moe.used;
    hp.n_expert_shared = moe.shared;
    hp.n_ff_exp = moe.ff_exp;
    hp.n_group = moe.groups;
    hp.n_group_used = moe.groups_used;
}

// ---------------------------------------------------------------------------------------------
// Presets.

Spec tiny(Arch arch) {
    Spec s;
    if (arch == Arch::Llama) {
        s = llama_base();
        set_dense_dims(s.hp, 512, 256, 2, 4, 2, 256);
        s.name = "Strata Synthetic Llama (tiny)";
    } else if (arch == Arch::Qwen2) {
        s = qwen2_base();
        set_dense_dims(s.hp, 512, 256, 1, 4, 2, 256);
        s.hp.n_ctx_train = 32768;
        s.hp.rope_base = 1000000.0f;
        s.tied = true;
        s.pre = "qwen2";
        s.name = "Strata Synthetic Qwen2 (tiny)";
    } else {
        s = deepseek2_base();
        set_deepseek2_dims(s.hp, 512, 256, 2, 4, 256, {256, 256, 64, 32, 64},
                           {1, 8, 2, 1, 256, 4, 2});
        s.name = "Strata Synthetic DeepSeek-R1 (tiny)";
    }
    s.target = recipe::Target::pure(quant::Type::F32);
    return s;
}

Spec tiny_lite(bool legacy) {
    Spec s = deepseek2_base();
    set_deepseek2_dims(s.hp, 512, 128, 2, 4, 64, {0, 128, 32, 16, 32}, {1, 4, 2, 1, 64, 1, 1});
    make_lite(s);
    s.name = legacy ? "Strata Synthetic DeepSeek-V2-Lite (tiny, legacy kv_b)"
                    : "Strata Synthetic DeepSeek-V2-Lite (tiny)";
    if (legacy) {
        // Pre-MLA converters: one attn_kv_b and no routing keys.
        s.hp.mla_split = false;
        s.routing_keys = false;
    }
    s.target = recipe::Target::pure(quant::Type::F32);
    return s;
}

// A few GB at Q4_K_M: big enough that experts do not all fit in a small RAM budget, small enough
// to write in about a minute.
Spec bench(Arch arch) {
    Spec s;
    if (arch == Arch::Llama) {
        s = llama_base();
        set_dense_dims(s.hp, 32768, 2048, 16, 32, 8, 8192);
        s.name = "Strata Synthetic Llama (bench)";
    } else if (arch == Arch::Qwen2) {
        s = qwen2_base();
        set_dense_dims(s.hp, 32768, 1536, 28, 12, 2, 8960);
        s.name = "Strata Synthetic Qwen2 (bench)";
    } else {
        s = deepseek2_base();
        set_deepseek2_dims(s.hp, 16384, 2048, 8, 16, 8192, {768, 512, 128, 64, 128},
                           {1, 64, 6, 1, 1536, 8, 4});
        s.name = "Strata Synthetic DeepSeek-R1 (bench)";
    }
    s.target = recipe::Target::of_mix(recipe::Mix::Q4_K_M);
    return s;
}

// About 40 GB at Q4_K_M (1.7× a 24 GiB machine's RAM): DeepSeek-R1's attention and expert shapes
// and vocabulary with fewer layers and half the experts, for the expert tier's acceptance runs.
// Written with random blocks: quantizing 40 GB of floats would take hours.
Spec big40() {
    Spec s = deepseek2_base();
    set_deepseek2_dims(s.hp, 129280, 7168, kBig40Layers, 128, 18432, {1536, 512, 128, 64, 128},
                       {1, 128, 8, 1, 2048, 8, 4});
    s.name = "Strata Synthetic DeepSeek-R1 (big40)";
    s.target = recipe::Target::of_mix(recipe::Mix::Q4_K_M);
    s.fill = Fill::Random;
    return s;
}

Spec shape_only(std::string_view preset) {
    Spec s;
    if (preset == "r1-671b") {
        s = deepseek2_base();
        set_deepseek2_dims(s.hp, 129280, 7168, 61, 128, 18432, {1536, 512, 128, 64, 128},
                           {3, 256, 8, 1, 2048, 8, 4});
        s.split_max_bytes = 50'000'000'000;  // the official 9-file layout
    } else if (preset == "v2-lite") {
        s = deepseek2_base();
        set_deepseek2_dims(s.hp, 102400, 2048, 27, 16, 10944, {0, 512, 128, 64, 128},
                           {1, 64, 6, 2, 1408, 1, 1});
        make_lite(s);
        s.pre = "deepseek-llm";
        s.bos = 100000;
        s.eos = 100001;
    } else if (preset == "r1-distill-llama-70b") {
        s = llama_base();
        set_dense_dims(s.hp, 128256, 8192, 80, 64, 8, 28672);
    } else if (preset == "r1-distill-llama-8b") {
        s = llama_base();
        set_dense_dims(s.hp, 128256, 4096, 32, 32, 8, 14336);
    } else if (preset == "r1-distill-qwen-32b" || preset == "r1-distill-qwen-14b") {
        s = qwen2_base();
        set_dense_dims(s.hp, 152064, 5120, preset == "r1-distill-qwen-32b" ? 64 : 48, 40, 8,
                       preset == "r1-distill-qwen-32b" ? 27648 : 13824);
        s.hp.rope_base = 1000000.0f;
        s.hp.rms_eps = 1e-5f;
    } else if (preset == "r1-distill-qwen-7b") {
        s = qwen2_base();
        set_dense_dims(s.hp, 152064, 3584, 28, 28, 4, 18944);
    } else {  // r1-distill-qwen-1.5b
        s = qwen2_base();
        set_dense_dims(s.hp, 151936, 1536, 28, 12, 2, 8960);
    }
    // Named by the preset id, as the tables name them.
    s.name = std::string(preset);
    s.shape_only = true;
    s.reduced_tokenizer = true;
    s.target = recipe::Target::of_mix(recipe::Mix::Q4_K_M);
    return s;
}

[[noreturn]] void usage(std::string message) {
    throw UsageError(std::move(message));
}

void need_positive(std::string_view option, int64_t v, int64_t max = kMaxDim) {
    if (v <= 0 || v > max) usage(fmt::format("{} is {}; expected 1 to {}", option, v, max));
}

}  // namespace

const std::vector<PresetInfo>& presets() {
    static const std::vector<PresetInfo> kPresets = {
        {"tiny", Arch::DeepSeek2, false, "golden-sized model of the family (a few MB, F32)"},
        {"tiny", Arch::Llama, false, "golden-sized model of the family (a few MB, F32)"},
        {"tiny", Arch::Qwen2, false, "golden-sized model of the family (a few MB, F32)"},
        {"tiny-lite", Arch::DeepSeek2, false, "V2-Lite style: no q_lora, softmax routing"},
        {"tiny-legacy", Arch::DeepSeek2, false, "tiny-lite with the pre-split attn_kv_b"},
        {"bench", Arch::DeepSeek2, false, "2.5 GiB at Q4_K_M: 8 layers, 64 experts"},
        {"bench", Arch::Llama, false, "650 MiB at Q4_K_M: 16 layers"},
        {"bench", Arch::Qwen2, false, "820 MiB at Q4_K_M: 28 layers"},
        {"big40", Arch::DeepSeek2, false,
         "40 GB at Q4_K_M: R1's shapes, 13 layers, 128 experts (8 used); random fill"},
        {"r1-671b", Arch::DeepSeek2, true, "DeepSeek-R1 671B, 9 shards"},
        {"v2-lite", Arch::DeepSeek2, true, "DeepSeek-V2-Lite 16B"},
        {"r1-distill-llama-70b", Arch::Llama, true, "R1-Distill-Llama-70B"},
        {"r1-distill-llama-8b", Arch::Llama, true, "R1-Distill-Llama-8B"},
        {"r1-distill-qwen-32b", Arch::Qwen2, true, "R1-Distill-Qwen-32B"},
        {"r1-distill-qwen-14b", Arch::Qwen2, true, "R1-Distill-Qwen-14B"},
        {"r1-distill-qwen-7b", Arch::Qwen2, true, "R1-Distill-Qwen-7B"},
        {"r1-distill-qwen-1.5b", Arch::Qwen2, true, "R1-Distill-Qwen-1.5B (untied)"},
    };
    return kPresets;
}

std::optional<Arch> parse_arch(std::string_view name) {
    for (Arch a : {Arch::Llama, Arch::Qwen2, Arch::DeepSeek2})
        if (arch_name(a) == name) return a;
    return std::nullopt;
}

Spec make_spec(std::string_view preset, std::optional<Arch> arch) {
    const PresetInfo* found = nullptr;
    bool known = false;
    for (const PresetInfo& p : presets()) {
        if (p.name != preset) continue;
        known = true;
        if (!arch || *arch == p.arch) {
            found = &p;
            break;
        }
    }
    if (!known) {
        std::string names;
        for (const PresetInfo& p : presets())
            if (names.find(p.name) == std::string::npos)
                names += fmt::format("{}{}", names.empty() ? "" : ", ", p.name);
        usage(fmt::format("unknown preset '{}' (presets: {})", preset, names));
    }
    if (!found) {
        usage(fmt::format("preset '{}' is not a {} model", preset,
                          arch ? arch_name(*arch) : "known"));
    }
    const bool several_archs = preset == "tiny" || preset == "bench";
    if (several_archs && !arch) usage(fmt::format("preset '{}' needs --arch", preset));

    Spec s;
    if (preset == "tiny") {
        s = tiny(*arch);
    } else if (preset == "tiny-lite" || preset == "tiny-legacy") {
        s = tiny_lite(preset == "tiny-legacy");
    } else if (preset == "bench") {
        s = bench(*arch);
    } else if (preset == "big40") {
        s = big40();
    } else {
        s = shape_only(preset);
    }
    s.preset = std::string(preset);
    return s;
}

void set_fill(Spec& s, Fill fill) {
    s.fill = fill;
    if (fill == Fill::Auto || !s.shape_only) return;
    s.shape_only = false;
    s.reduced_tokenizer = false;
}

std::optional<Fill> parse_fill(std::string_view name) {
    for (Fill f : {Fill::Auto, Fill::Quantize, Fill::Random})
        if (fill_name(f) == name) return f;
    return std::nullopt;
}

std::string_view fill_name(Fill fill) {
    switch (fill) {
        case Fill::Quantize:
            return "quantize";
        case Fill::Random:
            return "random";
        default:
            return "auto";
    }
}

void apply(Spec& s, const Overrides& o) {
    HParams& hp = s.hp;
    const bool ds = hp.arch == Arch::DeepSeek2;
    auto only = [&](bool allowed, std::string_view option, bool given) {
        if (!given) return;
        if (s.reduced_tokenizer && option != "--legacy-mla") {
            usage(
                fmt::format("{} cannot change the shape-only preset '{}' (its tensor table is "
                            "fixed)",
                            option, s.preset));
        }
        if (!allowed)
            usage(fmt::format("{} does not apply to {} models", option, arch_name(hp.arch)));
    };
    only(true, "--layers", o.layers.has_value());
    only(true, "--embd", o.embd.has_value());
    only(true, "--heads", o.heads.has_value());
    only(!ds, "--heads-kv", o.heads_kv.has_value());
    only(!ds, "--head-dim", o.head_dim.has_value());
    only(true, "--ff", o.ff.has_value());
    only(true, "--vocab", o.vocab.has_value());
    only(true, "--ctx", o.ctx.has_value());
    only(true, "--tied/--untied", o.tied.has_value());
    for (const auto& [option, given] : {std::pair{"--q-lora", o.q_lora.has_value()},
                                        {"--kv-lora", o.kv_lora.has_value()},
                                        {"--qk-nope", o.qk_nope.has_value()},
                                        {"--qk-rope", o.qk_rope.has_value()},
                                        {"--v-head", o.v_head.has_value()},
                                        {"--experts", o.experts.has_value()},
                                        {"--experts-used", o.experts_used.has_value()},
                                        {"--shared-experts", o.shared_experts.has_value()},
                                        {"--ff-exp", o.ff_exp.has_value()},
                                        {"--dense-layers", o.dense_layers.has_value()},
                                        {"--groups", o.groups.has_value()},
                                        {"--groups-used", o.groups_used.has_value()},
                                        {"--gating", o.gating.has_value()},
                                        {"--legacy-mla", o.legacy_mla}}) {
        only(ds, option, given);
    }

    // llama / qwen2 heads split n_embd evenly unless --head-dim says otherwise.
    const bool even_heads = !ds && hp.head_dim * hp.n_head == hp.n_embd;
    if (o.layers) {
        hp.n_layer = *o.layers;
        if (!o.dense_layers) hp.n_dense_lead = std::min(hp.n_dense_lead, hp.n_layer);
    }
    if (o.embd) hp.n_embd = *o.embd;
    if (o.heads) hp.n_head = *o.heads;
    if (o.heads_kv) hp.n_head_kv = *o.heads_kv;
    if (o.ff) hp.n_ff = *o.ff;
    if (o.vocab) hp.n_vocab = *o.vocab;
    if (o.ctx) hp.n_ctx_train = *o.ctx;
    if (o.tied) s.tied = *o.tied;
    if (!ds) {
        if (o.head_dim) {
            hp.head_dim = *o.head_dim;
        } else if (even_heads && hp.n_head > 0) {
            if (hp.n_embd % hp.n_head != 0) {
                usage(fmt::format("--embd {} is not divisible into {} heads (give --head-dim)",
                                  hp.n_embd, hp.n_head));
            }
            hp.head_dim = hp.n_embd / hp.n_head;
        }
        hp.n_rot = hp.head_dim;
    } else {
        if (o.q_lora) hp.q_lora_rank = *o.q_lora;
        if (o.kv_lora) hp.kv_lora_rank = *o.kv_lora;
        if (o.qk_nope) hp.qk_nope = *o.qk_nope;
        if (o.qk_rope) hp.qk_rope = *o.qk_rope;
        if (o.v_head) hp.v_head = *o.v_head;
        hp.n_rot = hp.qk_rope;
        hp.head_dim = hp.qk_nope + hp.qk_rope;
        if (o.experts) hp.n_expert = *o.experts;
        if (o.experts_used) hp.n_expert_used = *o.experts_used;
        if (o.shared_experts) hp.n_expert_shared = *o.shared_experts;
        if (o.ff_exp) hp.n_ff_exp = *o.ff_exp;
        if (o.dense_layers) hp.n_dense_lead = *o.dense_layers;
        if (o.groups) hp.n_group = *o.groups;
        if (o.groups_used) hp.n_group_used = *o.groups_used;
        if (o.gating) {
            if (*o.gating == "softmax") {
                hp.gating = Gating::Softmax;
            } else if (*o.gating == "sigmoid") {
                hp.gating = Gating::Sigmoid;
            } else {
                usage(fmt::format("--gating is '{}'; expected softmax or sigmoid", *o.gating));
            }
        }
        if (o.legacy_mla) hp.mla_split = false;
        // Routing that differs from softmax-without-groups needs its keys, even in a legacy file.
        if (o.gating || o.groups || o.groups_used) s.routing_keys = true;
    }
    check(s);
}

void check(const Spec& s) {
    const HParams& hp = s.hp;
    need_positive("--vocab", hp.n_vocab);
    if (!s.reduced_tokenizer && hp.n_vocab < min_vocab(hp.arch)) {
        usage(fmt::format("--vocab {} is too small for the {} tokenizer (at least {})", hp.n_vocab,
                          arch_name(hp.arch), min_vocab(hp.arch)));
    }
    need_positive("--embd", hp.n_embd);
    need_positive("--layers", hp.n_layer, kMaxLayers);
    need_positive("--heads", hp.n_head);
    need_positive("--ctx", hp.n_ctx_train, int64_t{1} << 30);
    if (hp.arch != Arch::DeepSeek2) {
        need_positive("--heads-kv", hp.n_head_kv);
        need_positive("--head-dim", hp.head_dim);
        need_positive("--ff", hp.n_ff);
        if (hp.n_head % hp.n_head_kv != 0)
            usage(fmt::format("--heads {} is not a multiple of --heads-kv {}", hp.n_head,
                              hp.n_head_kv));
        if (hp.head_dim % 2 != 0)
            usage(fmt::format("--head-dim {} is odd; RoPE rotates pairs", hp.head_dim));
        return;
    }
    if (hp.q_lora_rank < 0 || hp.q_lora_rank > kMaxDim)
        usage(fmt::format("--q-lora is {}; expected 0 (none) to {}", hp.q_lora_rank, kMaxDim));
    need_positive("--kv-lora", hp.kv_lora_rank);
    need_positive("--qk-nope", hp.qk_nope);
    need_positive("--qk-rope", hp.qk_rope);
    need_positive("--v-head", hp.v_head);
    if (hp.qk_rope % 2 != 0)
        usage(fmt::format("--qk-rope {} is odd; RoPE rotates pairs", hp.qk_rope));
    if (hp.n_dense_lead < 0 || hp.n_dense_lead > hp.n_layer)
        usage(fmt::format("--dense-layers is {}; expected 0 to --layers {}", hp.n_dense_lead,
                          hp.n_layer));
    if (hp.n_dense_lead > 0) need_positive("--ff", hp.n_ff);
    if (hp.n_dense_lead == hp.n_layer) return;  // no MoE blocks
    need_positive("--experts", hp.n_expert);
    need_positive("--ff-exp", hp.n_ff_exp);
    need_positive("--groups", hp.n_group);
    if (hp.n_expert_used <= 0 || hp.n_expert_used > hp.n_expert)
        usage(fmt::format("--experts-used is {}; expected 1 to --experts {}", hp.n_expert_used,
                          hp.n_expert));
    if (hp.n_expert_shared < 0 || hp.n_expert_shared > 64)
        usage(fmt::format("--shared-experts is {}; expected 0 to 64", hp.n_expert_shared));
    if (hp.n_expert % hp.n_group != 0)
        usage(fmt::format("--experts {} cannot form --groups {} of equal size", hp.n_expert,
                          hp.n_group));
    if (hp.n_group_used <= 0 || hp.n_group_used > hp.n_group)
        usage(fmt::format("--groups-used is {}; expected 1 to --groups {}", hp.n_group_used,
                          hp.n_group));
    const int64_t reachable = hp.n_group_used * (hp.n_expert / hp.n_group);
    if (hp.n_expert_used > reachable)
        usage(fmt::format("--experts-used {} exceeds the {} experts in {} chosen groups",
                          hp.n_expert_used, reachable, hp.n_group_used));
}

}  // namespace strata::synth
