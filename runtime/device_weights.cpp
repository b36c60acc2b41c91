#include "runtime/device_weights.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/error.h"

namespace strata {
namespace {

// Hands back the pages of the file mapping that lie wholly inside [data, data + bytes): the
// mapping is private and unwritten, so a page read again comes back from the file. Uploaded
// weights then are not counted twice in RSS.
void release_mapped(const uint8_t* data, size_t bytes) {
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(page - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace

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
            release_mapped(g->data, g->nbytes);
            w.bytes += g->nbytes;
            continue;
        }
        // A stack [n_in, n_out, n_expert]: expert e is n_out contiguous rows.
        const size_t slab = g->row_bytes() * static_cast<size_t>(g->ne[1]);
        for (size_t e = 0; e < tp.slabs.size(); ++e) {
            if (tp.slabs[e] != scheduler::Tier::Gpu) continue;
            w.slabs[{t.name, static_cast<int64_t>(e)}] =
                device.upload(fmt::format("{} expert {}", t.name, e), g->data + e * slab, slab);
            release_mapped(g->data + e * slab, slab);
            w.bytes += slab;
        }
    }
    return w;
}

DeviceTier::DeviceTier(scheduler::Device& device, const Model& model, const DeviceWeights& weights)
    : device_(&device) {
    for (const auto& [name, buffer] : weights.tensors) {
        const gguf::Tensor& t = model.file().tensor(name);
        ranges_[t.data] = {t.nbytes, buffer};
    }
    for (const auto& [key, buffer] : weights.slabs) {
        const gguf::Tensor& t = model.file().tensor(key.first);
        const size_t slab = t.row_bytes() * static_cast<size_t>(t.ne[1]);
        ranges_[t.data + static_cast<size_t>(key.second) * slab] = {slab, buffer};
    }
}

std::optional<std::pair<int64_t, size_t>> DeviceTier::find(const uint8_t* data,
                                                           size_t bytes) const {
    auto it = ranges_.upper_bound(data);
    if (it == ranges_.begin()) return std::nullopt;
    --it;
    // Addresses compared as integers: a split model's files are separate mappings.
    const auto offset = static_cast<size_t>(reinterpret_cast<uintptr_t>(data) -
                                            reinterpret_cast<uintptr_t>(it->first));
    if (offset > it->second.bytes || bytes > it->second.bytes - offset) return std::nullopt;
    return std::pair{it->second.buffer, offset};
}

std::optional<scheduler::DeviceMatrix> DeviceTier::find(const simd::Matrix& w) const {
    if (w.n_out <= 0) return std::nullopt;
    const size_t bytes =
        static_cast<size_t>(w.n_out - 1) * w.row_stride + quant::row_bytes(w.type, w.n_in);
    const auto at = find(w.data, bytes);
    if (!at) return std::nullopt;
    return scheduler::DeviceMatrix{at->first, at->second, w.type, w.n_in, w.n_out, w.row_stride};
}

}  // namespace strata
