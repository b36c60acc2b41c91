// The planner's view of a model (scheduler::ModelInfo) from what a GGUF header says: tensor
// names, types, shapes and sizes, and the hyperparameters that size the KV cache. No tensor
// data is read, so shape-only files (`strata synth --preset r1-671b`) plan like real ones.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model.h"
#include "scheduler/plan.h"
#include "simd/quant.h"

namespace strata {

struct TensorShape {
    std::string name;
    quant::Type type = quant::Type::F32;
    std::array<int64_t, 4> ne{1, 1, 1, 1};  // ne[0] (the row length) first
    uint64_t bytes = 0;
};

// KV cache bytes per token over all layers, as the session allocates it: MLA's compressed row
// (kv_lora_rank + qk_rope floats) for deepseek2, K and V rows of n_head_kv · head_dim for
// llama and qwen2. Floats, as runtime/kv_cache.h keeps them.
uint64_t kv_bytes_per_token(const HParams& hp);

// Classifies every tensor (attention, norms, router, experts, ...) and sizes the KV cache.
scheduler::ModelInfo model_info(std::string name, const HParams& hp,
                                const std::vector<TensorShape>& tensors);

// From a loaded model (Model::load maps the file; the planner touches no tensor data).
scheduler::ModelInfo model_info(const Model& model);

}  // namespace strata
