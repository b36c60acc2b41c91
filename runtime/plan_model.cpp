#include "runtime/plan_model.h"

#include <charconv>
#include <filesystem>

#include "runtime/error.h"

namespace strata {

uint64_t kv_bytes_per_token(const HParams& hp) {
    const int64_t per_layer =
        hp.arch == Arch::DeepSeek2 ? hp.kv_lora_rank + hp.qk_rope : 2 * hp.n_head_kv * hp.head_dim;
    return static_cast<uint64_t>(per_layer * hp.n_layer) * sizeof(float);
}

namespace {

// "blk.12.attn_q.weight" → 12; -1 for tensors outside blocks.
int64_t layer_of(std::string_view name) {
    if (!name.starts_with("blk.")) return -1;
    int64_t il = -1;
    const char* begin = name.data() + 4;
    std::from_chars(begin, name.data() + name.size(), il);
    return il;
}

scheduler::Part part_of(std::string_view name) {
    using scheduler::Part;
    switch (role_of(name)) {
        case Role::EmbedOutput:
            return name.starts_with("token_embd.") ? Part::TokenEmbd : Part::Output;
        case Role::Attention:
            return Part::Attention;
        case Role::Router:
            return Part::Router;
        case Role::RoutedExperts:
            return Part::RoutedExperts;
        case Role::SharedExperts:
            return Part::SharedExperts;
        case Role::DenseFfn:
            return Part::DenseFfn;
        case Role::Norm:
            return Part::Norm;
        case Role::Other:
            break;
    }
    return Part::Other;
}

}  // namespace

scheduler::ModelInfo model_info(std::string name, const HParams& hp,
                                const std::vector<TensorShape>& tensors) {
    scheduler::ModelInfo m;
    m.name = std::move(name);
    m.arch = std::string(arch_name(hp.arch));
    m.n_layer = hp.n_layer;
    m.n_embd = hp.n_embd;
    m.n_expert = hp.arch == Arch::DeepSeek2 ? hp.n_expert : 0;
    m.n_expert_used = hp.arch == Arch::DeepSeek2 ? hp.n_expert_used : 0;
    m.kv_bytes_per_token = kv_bytes_per_token(hp);
    for (const TensorShape& t : tensors) {
        scheduler::TensorInfo ti;
        ti.name = t.name;
        ti.type = std::string(quant::type_name(t.type));
        ti.bytes = t.bytes;
        ti.n_elements = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
        ti.part = part_of(t.name);
        ti.layer = layer_of(t.name);
        // A routed stack holds one slab per expert along its last dimension.
        if (ti.part == scheduler::Part::RoutedExperts) {
            ti.n_expert = t.ne[2];
            if (ti.n_expert != m.n_expert || ti.layer < 0 || ti.layer >= m.n_layer)
                fail(
                    "tensor '{}': {} expert slabs in layer {}, the model has {} experts and {} "
                    "layers",
                    t.name, ti.n_expert, ti.layer, m.n_expert, m.n_layer);
        } else if (ti.layer >= m.n_layer) {
            fail("tensor '{}': layer {} past the model's {} layers", t.name, ti.layer, m.n_layer);
        }
        m.tensors.push_back(std::move(ti));
    }
    return m;
}

scheduler::ModelInfo model_info(const Model& model) {
    std::vector<TensorShape> shapes;
    for (const gguf::Tensor& t : model.file().tensors())
        shapes.push_back({std::string(t.name), t.type, t.ne, t.nbytes});
    return model_info(std::filesystem::path(model.file().path()).filename().string(),
                      model.hparams(), shapes);
}

}  // namespace strata
