// ExpertStore: the byte ranges of routed experts and the slot layout they read into.
#include "offload/expert_store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "offload/reader.h"
#include "runtime/error.h"

namespace strata::offload {

ExpertStore::ExpertStore(StoreTable table) : table_(std::move(table)) {
    const int64_t n_layer = table_.n_layer, n_expert = table_.n_expert;
    if (n_layer <= 0 || n_expert <= 0 ||
        table_.experts.size() != static_cast<size_t>(n_layer * n_expert)) {
        fail("expert table: {} entries for {} layers of {} experts", table_.experts.size(), n_layer,
             n_expert);
    }
    std::vector<uint64_t> sizes;
    for (const std::string& path : table_.files) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0)
            fail("{}: cannot stat for expert reads: {}", path, std::strerror(errno));
        sizes.push_back(static_cast<uint64_t>(st.st_size));
    }
    layer_has_.assign(static_cast<size_t>(n_layer), false);
    for (int64_t il = 0; il < n_layer; ++il) {
        for (int64_t e = 0; e < n_expert; ++e) {
            const ExpertSlabs& s = slabs(il, e);
            uint64_t bytes = 0;
            for (const SlabRange& r : s.part) {
                if (r.bytes == 0) continue;
                if (r.file >= sizes.size() || r.offset > sizes[r.file] ||
                    r.bytes > sizes[r.file] - r.offset) {
                    fail("expert {} of layer {}: bytes [{}, {}) lie outside {}", e, il, r.offset,
                         r.offset + r.bytes,
                         r.file < table_.files.size() ? table_.files[r.file] : "the model files");
                }
                bytes += r.bytes;
            }
            if (bytes == 0) continue;
            for (const SlabRange& r : s.part) {
                if (r.bytes == 0)
                    fail("expert {} of layer {}: a gate, up or down slab is missing", e, il);
            }
            if (e > 0 && !layer_has_[static_cast<size_t>(il)])
                fail("layer {}: expert {} has slabs, expert 0 has none", il, e);
            layer_has_[static_cast<size_t>(il)] = true;
            expert_bytes_ += bytes;
            ++n_routed_;
            uint64_t footprint = 0;
            for (const PartInSlot& p : slot_layout(il, e)) footprint += p.read_bytes;
            slot_bytes_ = std::max(slot_bytes_, footprint);
        }
        if (layer_has_[static_cast<size_t>(il)]) {
            for (int64_t e = 0; e < n_expert; ++e) {
                if (slabs(il, e).part[0].bytes == 0)
                    fail("layer {}: expert {} has no slabs", il, e);
            }
        }
    }
}

std::array<PartInSlot, kExpertParts> ExpertStore::slot_layout(int64_t layer, int64_t expert) const {
    constexpr uint64_t A = Reader::kAlign;
    std::array<PartInSlot, kExpertParts> out{};
    uint64_t at = 0;
    const ExpertSlabs& s = slabs(layer, expert);
    for (int p = 0; p < kExpertParts; ++p) {
        const SlabRange& r = s.part[static_cast<size_t>(p)];
        PartInSlot& o = out[static_cast<size_t>(p)];
        o.read_offset = r.offset / A * A;
        const uint64_t end = r.offset + r.bytes;
        o.read_bytes = (end + A - 1) / A * A - o.read_offset;
        o.needed = end - o.read_offset;
        o.slot_offset = at;
        o.data_offset = at + (r.offset - o.read_offset);
        at += o.read_bytes;
    }
    return out;
}

}  // namespace strata::offload
