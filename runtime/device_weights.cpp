#include "runtime/device_weights.h"

#include <fmt/format.h>

#include "runtime/error.h"

namespace strata {

DeviceWeights upload_placement(scheduler::Device& device, const Model& model,
                               const scheduler::ModelInfo& info,
                               const scheduler::Placement& placement) {
    if (placement.tensors.size() != info.tensors.size())
        fail("upload_placement: the placement has {} tensors, the model {}",
             placement.tensors.size(), info.tensors.size());
    DeviceWeights w;
    for (size_t i = 0; i < info.tensors.size(); ++i) {
        const scheduler::TensorInfo& t = info.tensors[i];
        const scheduler::TensorPlacement& tp = placement.tensors[i];
        const gguf::Tensor* g = model.file().find_tensor(t.name);
        if (!g) fail("upload_placement: tensor '{}' is not in {}", t.name, model.file().path());
        if (tp.slabs.empty()) {
            if (tp.tier != scheduler::Tier::Gpu) continue;
            w.tensors[t.name] = device.upload(t.name, g->data, g->nbytes);
            w.bytes += g->nbytes;
            continue;
        }
        // A stack [n_in, n_out, n_expert]: expert e is n_out contiguous rows.
        const size_t slab = g->row_bytes() * static_cast<size_t>(g->ne[1]);
        for (size_t e = 0; e < tp.slabs.size(); ++e) {
            if (tp.slabs[e] != scheduler::Tier::Gpu) continue;
            w.slabs[{t.name, static_cast<int64_t>(e)}] =
                device.upload(fmt::format("{} expert {}", t.name, e), g->data + e * slab, slab);
            w.bytes += slab;
        }
    }
    return w;
}

}  // namespace strata
