// Chooses the forward pass of a model's architecture.
#include "runtime/arch/forward.h"

#include "runtime/arch/archs.h"

namespace strata {

// One pass per row: what run_batch must equal, for architectures without a batched pass.
void Forward::run_batch(std::span<const BatchRow> rows, float* logits) {
    for (size_t i = 0; i < rows.size(); ++i) {
        const BatchRow& r = rows[i];
        run({&r.token, 1}, r.pos, *r.cache, false, logits + static_cast<int64_t>(i) * n_vocab_);
    }
}

std::unique_ptr<Forward> make_forward(const Model& model, MlaLegacy mla_legacy) {
    switch (model.hparams().arch) {
        case Arch::Llama:
            return arch::make_gqa_forward(model, ops::RopeLayout::Adjacent);
        case Arch::Qwen2:
            return arch::make_qwen2_forward(model);
        case Arch::DeepSeek2:
            return arch::make_deepseek2_forward(model, mla_legacy);
    }
    return nullptr;
}

}  // namespace strata
