#include "runtime/device_weights.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "runtime/error.h"
#include "simd/repack.h"

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

// Uploads `bytes` mapped bytes of tensor t (`interleaved`: regrouped for the CPU): as they are,
// or put back in rows when the device does not take that layout. Interleaved pages are the
// process's own (rewritten), not the file's: they stay, as a read of a released page would
// bring back the file's rows under a view that expects groups.
int64_t upload_bytes(scheduler::Device& device, const gguf::Tensor& t, bool interleaved,
                     const std::string& what, const uint8_t* data, size_t bytes) {
    int64_t id;
    if (interleaved && !device.takes_interleaved()) {
        std::vector<uint8_t> rows(bytes);
        simd::deinterleave_rows(t.type, data, rows.data(), t.ne[0],
                                static_cast<int64_t>(bytes / t.row_bytes()));
        id = device.upload(what, rows.data(), bytes);
    } else {
        id = device.upload(what, data, bytes);
    }
    if (!interleaved) release_mapped(data, bytes);
    return id;
}

simd::Layout device_layout(const scheduler::Device& device, bool interleaved) {
    return interleaved && device.takes_interleaved() ? simd::Layout::Interleaved16
                                                     : simd::Layout::Rows;
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
            // The planner places stacks slab by slab; one regrouped so could not go up whole
            // under one layout.
            if (!g->interleaved_slabs.empty())
                fail("upload_placement: {} is regrouped slab by slab and cannot be uploaded whole",
                     t.name);
            w.tensors[t.name] =
                upload_bytes(device, *g, g->interleaved, t.name, g->data, g->nbytes);
            w.bytes += g->nbytes;
            continue;
        }
        // A stack [n_in, n_out, n_expert]: expert e is n_out contiguous rows.
        const size_t slab = g->row_bytes() * static_cast<size_t>(g->ne[1]);
        for (size_t e = 0; e < tp.slabs.size(); ++e) {
            if (tp.slabs[e] != scheduler::Tier::Gpu) continue;
            const auto i2 = static_cast<int64_t>(e);
            w.slabs[{t.name, i2}] =
                upload_bytes(device, *g, g->slab_interleaved(i2),
                             fmt::format("{} expert {}", t.name, e), g->data + e * slab, slab);
            w.bytes += slab;
        }
    }
    return w;
}

DeviceTier::DeviceTier(scheduler::Device& device, const Model& model, const DeviceWeights& weights)
    : device_(&device) {
    for (const auto& [name, buffer] : weights.tensors) {
        const gguf::Tensor& t = model.file().tensor(name);
        ranges_[t.data] = {t.nbytes, buffer, device_layout(device, t.interleaved)};
    }
    for (const auto& [key, buffer] : weights.slabs) {
        const gguf::Tensor& t = model.file().tensor(key.first);
        const size_t slab = t.row_bytes() * static_cast<size_t>(t.ne[1]);
        ranges_[t.data + static_cast<size_t>(key.second) * slab] = {
            slab, buffer, device_layout(device, t.slab_interleaved(key.second))};
    }
}

const DeviceTier::Range* DeviceTier::locate(const uint8_t* data, size_t bytes,
                                            size_t* offset) const {
    auto it = ranges_.upper_bound(data);
    if (it == ranges_.begin()) return nullptr;
    --it;
    // Addresses compared as integers: a split model's files are separate mappings.
    *offset = static_cast<size_t>(reinterpret_cast<uintptr_t>(data) -
                                  reinterpret_cast<uintptr_t>(it->first));
    if (*offset > it->second.bytes || bytes > it->second.bytes - *offset) return nullptr;
    return &it->second;
}

std::optional<std::pair<int64_t, size_t>> DeviceTier::find(const uint8_t* data,
                                                           size_t bytes) const {
    size_t offset = 0;
    const Range* r = locate(data, bytes, &offset);
    if (!r) return std::nullopt;
    return std::pair{r->buffer, offset};
}

std::optional<scheduler::DeviceMatrix> DeviceTier::find(const simd::Matrix& w) const {
    if (w.n_out <= 0) return std::nullopt;
    const size_t bytes =
        static_cast<size_t>(w.n_out - 1) * w.row_stride + quant::row_bytes(w.type, w.n_in);
    size_t offset = 0;
    const Range* r = locate(w.data, bytes, &offset);
    if (!r) return std::nullopt;
    return scheduler::DeviceMatrix{r->buffer, offset,       w.type,   w.n_in,
                                   w.n_out,   w.row_stride, r->layout};
}

}  // namespace strata
