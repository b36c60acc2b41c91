// qwen2 (Qwen2 / Qwen2.5, R1-Distill-Qwen): the llama decoder with Q/K/V biases (bound by the
// model when present, required for qwen2) and NEOX rope, which rotates element i with element
// i + n_rot/2 instead of adjacent pairs. Embeddings are usually tied (output = token_embd).
#include "runtime/arch/archs.h"

namespace strata::arch {

std::unique_ptr<Forward> make_qwen2_forward(const Model& model) {
    return make_gqa_forward(model, ops::RopeLayout::Neox);
}

}  // namespace strata::arch
