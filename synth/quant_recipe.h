// Which type each tensor gets when a model is quantized, as llama-quantize decides it
// (llama.cpp src/llama-quant.cpp, llama_tensor_get_type and its shape fallback): the K-quant
// mixes such as Q4_K_M, and "pure" files that give every weight matrix one type.
//
// A pure function of the tensor's name and shape and a few facts about the model, so that the
// synthesizer, the planner and tests can predict a real file's types without its data.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "runtime/model.h"
#include "simd/quant.h"

namespace strata::recipe {

// llama.cpp's K-quant mixes; the value is the general.file_type id llama-quantize writes.
enum class Mix : uint32_t {
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
};

// What a whole file is quantized to: a mix, or `base` for every weight matrix (pure).
struct Target {
    quant::Type base = quant::Type::F32;  // the mix's default type, or the pure type
    std::optional<Mix> mix;

    static Target pure(quant::Type type) { return {type, std::nullopt}; }
    static Target of_mix(Mix mix);
    bool operator==(const Target&) const = default;
};

// "Q4_K_M" (a mix), "Q8_0" / "f16" (pure; case-insensitive). Type names win over mix names, so
// "Q2_K" and "Q6_K" are pure here; those two mixes are reached with Target::of_mix. nullopt for
// anything else, including types that only activations use (Q8_1, Q8_K).
std::optional<Target> parse_target(std::string_view name);
// Every name parse_target accepts, comma-separated, for usage messages.
std::string target_names();
std::string target_name(const Target& target);
// general.file_type as llama-quantize writes it (pure K types map to their _M mix id, as
// llama-quantize's type aliases do).
uint32_t file_type(const Target& target);

// The facts about the model that the rules look at.
struct ModelFacts {
    Arch arch = Arch::Llama;
    int64_t n_layer = 0;
    int64_t n_head = 1;
    int64_t n_head_kv = 1;
    int64_t n_expert = 0;
    bool has_output = true;  // false: embeddings are tied, token_embd is treated as the output
};

struct Choice {
    quant::Type type = quant::Type::F32;    // what the tensor is stored as
    quant::Type wanted = quant::Type::F32;  // what the rules picked before the shape fallback
    bool fallback() const { return type != wanted; }
};

// Whether llama-quantize quantizes this tensor at all: weight matrices of 2 or more dimensions,
// except norms and the expert router.
bool is_quantizable(std::string_view name, std::span<const int64_t> ne);

// The type of one tensor. `ne` is its shape (ne[0] first); `source` is its type in the
// unquantized file, which tensors that are not quantized keep.
Choice choose_type(const ModelFacts& model, const Target& target, std::string_view name,
                   std::span<const int64_t> ne, quant::Type source = quant::Type::F32);

// llama-quantize's output order: tensors outside blocks first, then block by block (numerically),
// by name within a block.
bool quantize_order_less(std::string_view a, std::string_view b);

}  // namespace strata::recipe
