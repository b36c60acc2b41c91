// llama-quantize's type rules. The categories, the "more bits" layer pattern and the fallback
// table follow src/llama-quant.cpp; only the branches that can fire for the K-quant mixes and
// the three architectures Strata runs are kept (no IQ types, no Falcon).
#include "synth/quant_recipe.h"

#include <array>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace strata::recipe {
namespace {

using quant::Type;

struct MixName {
    std::string_view name;
    Mix mix;
};
// Names that are not also type names; Q2_K and Q6_K mean the pure types on the command line.
constexpr std::array<MixName, 7> kMixNames{{
    {"Q3_K_S", Mix::Q3_K_S},
    {"Q3_K_M", Mix::Q3_K_M},
    {"Q3_K_L", Mix::Q3_K_L},
    {"Q4_K_S", Mix::Q4_K_S},
    {"Q4_K_M", Mix::Q4_K_M},
    {"Q5_K_S", Mix::Q5_K_S},
    {"Q5_K_M", Mix::Q5_K_M},
}};

// Types a whole file may be written in: storage types Strata computes with (not the activation
// formats Q8_1 / Q8_K).
constexpr std::array<Type, 13> kPureTypes{
    Type::F32,  Type::F16,  Type::BF16, Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1,
    Type::Q8_0, Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K,
};

bool same_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::toupper(static_cast<unsigned char>(a[i])) !=
            std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    }
    return true;
}

bool contains(std::string_view s, std::string_view part) {
    return s.find(part) != std::string_view::npos;
}

// llama-quant.cpp's tensor categories, matched on the name the same way.
enum class Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
};

Category category_of(std::string_view name) {
    if (name == "output.weight") return Category::Output;
    if (name == "token_embd.weight") return Category::TokenEmbd;
    if (contains(name, "attn_qkv.weight")) return Category::AttnQkv;
    if (contains(name, "attn_kv_b.weight")) return Category::AttnKvB;
    if (contains(name, "attn_v.weight")) return Category::AttnV;
    if (contains(name, "attn_k.weight")) return Category::AttnK;
    if (contains(name, "attn_q.weight")) return Category::AttnQ;
    if (contains(name, "attn_output.weight")) return Category::AttnOutput;
    if (contains(name, "ffn_up")) return Category::FfnUp;
    if (contains(name, "ffn_gate")) return Category::FfnGate;
    if (contains(name, "ffn_down")) return Category::FfnDown;
    return Category::Other;
}

// The block index of "blk.N.…", or -1 for tensors outside blocks (sscanf "blk.%d." in llama.cpp).
int64_t layer_of(std::string_view name) {
    constexpr std::string_view kPrefix = "blk.";
    if (!name.starts_with(kPrefix)) return -1;
    int64_t layer = -1;
    const char* first = name.data() + kPrefix.size();
    const auto [ptr, ec] = std::from_chars(first, name.data() + name.size(), layer);
    return ec == std::errc() && ptr != first ? layer : -1;
}

// llama.cpp spends more bits on the first and last eighth of the layers and every third layer
// in between. llama.cpp counts attn_v / ffn_down tensors in file order; with one such tensor per
// block (every architecture here) the count is the block index.
bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// llama.cpp's LLM_TYPE_70B, the only model size the rules look at: Llama 2/3 70B (80 blocks,
// grouped-query attention) and Qwen2 72B (80 blocks).
bool is_70b(const ModelFacts& m) {
    if (m.n_layer != 80) return false;
    return m.arch == Arch::Qwen2 || (m.arch == Arch::Llama && m.n_head != m.n_head_kv);
}

int64_t n_gqa(const ModelFacts& m) {
    return m.n_head_kv > 0 ? m.n_head / m.n_head_kv : 1;
}

bool divides(Type type, int64_t ne0) {
    return ne0 % quant::traits(type).block_size == 0;
}

// The mix's choice before the shape fallback (llama_tensor_get_type_impl).
Type mix_type(const ModelFacts& m, Mix mix, Type base, std::string_view name, int64_t ne0) {
    const Category cat = category_of(name);
    const int64_t layer = std::max<int64_t>(0, layer_of(name));
    Type t = base;
    // Tied embeddings: token_embd is also the output, so it gets the output's type.
    if (cat == Category::Output || (!m.has_output && cat == Category::TokenEmbd)) {
        if (!divides(t, ne0)) return Type::Q8_0;
        return t != Type::Q8_0 ? Type::Q6_K : t;
    }
    switch (cat) {
        case Category::AttnV:
        case Category::AttnQkv:
        case Category::AttnKvB:
            break;  // below
        case Category::AttnK:
            // 8-expert models (Mixtral): K is cheap, so it gets 8 bits.
            return m.n_expert == 8 ? Type::Q8_0 : t;
        case Category::FfnDown:
            if (mix == Mix::Q2_K) return Type::Q3_K;
            if (mix == Mix::Q3_K_M) return layer < m.n_layer / 16 ? Type::Q5_K : Type::Q4_K;
            if (mix == Mix::Q3_K_L) return Type::Q5_K;
            if ((mix == Mix::Q4_K_M || mix == Mix::Q5_K_M) && use_more_bits(layer, m.n_layer))
                return Type::Q6_K;
            if (mix == Mix::Q4_K_S && layer < m.n_layer / 8) return Type::Q5_K;
            return t;
        case Category::AttnOutput:
            if (m.n_expert == 8) {
                const bool bump = mix == Mix::Q2_K || mix == Mix::Q3_K_S || mix == Mix::Q3_K_M ||
                                  mix == Mix::Q4_K_S || mix == Mix::Q4_K_M;
                return bump ? Type::Q5_K : t;
            }
            if (mix == Mix::Q2_K) return Type::Q3_K;
            if (mix == Mix::Q3_K_M) return Type::Q4_K;
            if (mix == Mix::Q3_K_L) return Type::Q5_K;
            return t;
        default:
            return t;  // token_embd (untied), Q, gate, up and the rest keep the default
    }
    // V-like tensors. Fused QKV has its own rule in llama.cpp, checked first.
    if (cat == Category::AttnQkv) {
        if (mix == Mix::Q3_K_M || mix == Mix::Q3_K_L) return Type::Q4_K;
        if (mix == Mix::Q4_K_M) return Type::Q5_K;
        if (mix == Mix::Q5_K_M) return Type::Q6_K;
        return t;
    }
    if (mix == Mix::Q2_K) {
        t = n_gqa(m) >= 4 ? Type::Q4_K : Type::Q3_K;
    } else if (mix == Mix::Q3_K_M) {
        t = layer < 2 ? Type::Q5_K : Type::Q4_K;
    } else if (mix == Mix::Q3_K_L) {
        t = Type::Q5_K;
    } else if ((mix == Mix::Q4_K_M || mix == Mix::Q5_K_M) && use_more_bits(layer, m.n_layer)) {
        t = Type::Q6_K;
    } else if (mix == Mix::Q4_K_S && layer < 4) {
        t = Type::Q5_K;
    }
    // In a 70B model 8 query heads share each V head, so V is small and worth more bits.
    if (is_70b(m) && (t == Type::Q3_K || t == Type::Q4_K)) t = Type::Q5_K;
    if (m.n_expert == 8) t = Type::Q8_0;
    return t;
}

// A type whose block fits a row of ne0 elements (llama.cpp's tensor_type_fallback). llama.cpp
// refuses legacy types whose 32-element block does not fit; F16 is used for them here.
Type fallback_type(Type wanted, int64_t ne0) {
    if (divides(wanted, ne0)) return wanted;
    Type t = Type::F16;
    switch (wanted) {
        case Type::Q2_K:
        case Type::Q3_K:
            t = Type::Q4_0;
            break;
        case Type::Q4_K:
            t = Type::Q5_0;
            break;
        case Type::Q5_K:
            t = Type::Q5_1;
            break;
        case Type::Q6_K:
            t = Type::Q8_0;
            break;
        default:
            break;
    }
    return divides(t, ne0) ? t : Type::F16;
}

bool is_quantized(Type t) {
    return quant::traits(t).block_size > 1;
}

}  // namespace

Target Target::of_mix(Mix mix) {
    switch (mix) {
        case Mix::Q2_K:
            return {Type::Q2_K, mix};
        case Mix::Q3_K_S:
        case Mix::Q3_K_M:
        case Mix::Q3_K_L:
            return {Type::Q3_K, mix};
        case Mix::Q4_K_S:
        case Mix::Q4_K_M:
            return {Type::Q4_K, mix};
        case Mix::Q5_K_S:
        case Mix::Q5_K_M:
            return {Type::Q5_K, mix};
        case Mix::Q6_K:
            return {Type::Q6_K, mix};
    }
    return {Type::Q4_K, Mix::Q4_K_M};
}

std::optional<Target> parse_target(std::string_view name) {
    for (Type t : kPureTypes) {
        if (same_ignoring_case(name, quant::type_name(t))) return Target::pure(t);
    }
    for (const MixName& m : kMixNames) {
        if (same_ignoring_case(name, m.name)) return Target::of_mix(m.mix);
    }
    return std::nullopt;
}

std::string target_names() {
    std::string out;
    for (Type t : kPureTypes)
        out += fmt::format("{}{}", out.empty() ? "" : ", ", quant::type_name(t));
    for (const MixName& m : kMixNames) out += fmt::format(", {}", m.name);
    return out;
}

std::string target_name(const Target& target) {
    if (!target.mix) return std::string(quant::type_name(target.base));
    if (*target.mix == Mix::Q2_K) return "Q2_K (mix)";
    if (*target.mix == Mix::Q6_K) return "Q6_K (mix)";
    for (const MixName& m : kMixNames)
        if (m.mix == *target.mix) return std::string(m.name);
    return "unknown";
}

uint32_t file_type(const Target& target) {
    if (target.mix) return static_cast<uint32_t>(*target.mix);
    switch (target.base) {
        case Type::F32:
            return 0;
        case Type::F16:
            return 1;
        case Type::Q4_0:
            return 2;
        case Type::Q4_1:
            return 3;
        case Type::Q8_0:
            return 7;
        case Type::Q5_0:
            return 8;
        case Type::Q5_1:
            return 9;
        case Type::Q2_K:
            return 10;
        case Type::Q3_K:
            return 12;
        case Type::Q4_K:
            return 15;
        case Type::Q5_K:
            return 17;
        case Type::Q6_K:
            return 18;
        case Type::BF16:
            return 32;
        default:
            return 0;
    }
}

bool is_quantizable(std::string_view name, std::span<const int64_t> ne) {
    // ggml_n_dims: trailing dimensions of 1 do not count.
    size_t n_dims = ne.size();
    while (n_dims > 1 && ne[n_dims - 1] == 1) --n_dims;
    if (n_dims < 2) return false;
    if (!name.ends_with("weight")) return false;
    if (contains(name, "_norm.weight")) return false;
    // The router stays float: its few weights decide which experts run.
    if (contains(name, "ffn_gate_inp.weight")) return false;
    return true;
}

Choice choose_type(const ModelFacts& model, const Target& target, std::string_view name,
                   std::span<const int64_t> ne, quant::Type source) {
    if (ne.empty() || !is_quantizable(name, ne)) return {source, source};
    // F32 / F16 / BF16 targets take every weight matrix as is: no rules, no fallback.
    if (!is_quantized(target.base)) return {target.base, target.base};
    const Type wanted =
        target.mix ? mix_type(model, *target.mix, target.base, name, ne[0]) : target.base;
    return {fallback_type(wanted, ne[0]), wanted};
}

bool quantize_order_less(std::string_view a, std::string_view b) {
    const int64_t la = layer_of(a), lb = layer_of(b);
    if (la != lb) return la < lb;
    return a < b;
}

}  // namespace strata::recipe
