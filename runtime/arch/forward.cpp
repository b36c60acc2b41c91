// Chooses the forward pass of a model's architecture.
#include "runtime/arch/forward.h"

#include "runtime/arch/archs.h"

namespace strata {

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
