// Constructors of the architectures' forward passes (one file each in runtime/arch/).
#pragma once

#include <memory>

#include "runtime/arch/forward.h"
#include "runtime/ops.h"

namespace strata::arch {

// llama.cpp: the grouped-query decoder (llama; qwen2 reuses it with NEOX rope and Q/K/V biases).
std::unique_ptr<Forward> make_gqa_forward(const Model& model, ops::RopeLayout layout);
// qwen2.cpp
std::unique_ptr<Forward> make_qwen2_forward(const Model& model);
// deepseek2.cpp; `mla_legacy`: how files with the legacy attn_kv_b run (kv_cache.h).
std::unique_ptr<Forward> make_deepseek2_forward(const Model& model, MlaLegacy mla_legacy);
// The q·k scale of deepseek2 attention: mscale² / sqrt(qk_nope + qk_rope), where YaRN's
// magnitude correction mscale = 1 + 0.1 · mscale_all_dim · ln(factor) goes into the scale
// instead of the rotation (llama.cpp's deepseek2 graph).
float mla_attention_scale(const HParams& hp);

}  // namespace strata::arch
