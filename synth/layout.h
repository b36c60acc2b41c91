// The tensor table of a synthetic model: names, shapes and dimension order as the reference
// converter writes them, types from the quantization recipe, the order in which they are written
// and, for split models, which shard each lands in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "synth/quant_recipe.h"
#include "synth/spec.h"

namespace strata::synth {

// How a tensor's values are drawn.
enum class Init {
    Normal,      // N(0, scale²)
    NormWeight,  // 1 + N(0, scale²): RMSNorm gains near one
    RopeFreqs,   // llama3 frequency factors, computed
    MlaK,        // attn_k_b: the K rows of the layer's attn_kv_b, transposed per head
    MlaV,        // attn_v_b: the V rows of the layer's attn_kv_b
};

struct TensorPlan {
    std::string name;
    std::vector<int64_t> ne;                // shape, ne[0] (the row length) first
    quant::Type type = quant::Type::F32;    // as stored
    quant::Type wanted = quant::Type::F32;  // the recipe's choice before the shape fallback
    uint64_t bytes = 0;                     // data bytes, without padding
    int64_t layer = -1;                     // block index; -1 outside blocks
    Init init = Init::Normal;
    float scale = 0.0f;  // standard deviation of the random part
    uint32_t shard = 0;

    int64_t n_elements() const;
    int64_t n_rows() const { return n_elements() / ne[0]; }
};

// What the quantization rules need to know about the spec's model.
recipe::ModelFacts model_facts(const Spec& spec);

// Every tensor of the spec with its type, in file order: the converter's order for F32 files,
// llama-quantize's order (by block, then by name) for anything quantized.
std::vector<TensorPlan> plan_tensors(const Spec& spec);

// llama-gguf-split's plan: tensors in file order, a new shard whenever the running sum of
// 32-byte-padded tensor sizes would pass max_bytes. Sets each tensor's shard; returns the count.
uint32_t assign_shards(std::vector<TensorPlan>& tensors, uint64_t max_bytes);

}  // namespace strata::synth
