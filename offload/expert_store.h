// Where every routed expert lives on disk: for each layer and expert the byte ranges of its
// gate, up and down slabs (the expert-index-outermost slices of the stacked ffn_*_exps tensors),
// in whichever split file holds them, and how many bytes of the model are not routed experts
// (the resident part). offload/ knows byte ranges only; runtime/ builds the table from the model.
//
// A slab starts wherever the file put it (tensor data is 32-byte aligned, slabs follow each
// other), so an O_DIRECT read takes the enclosing Reader::kAlign-aligned range. An expert's slot
// holds its three enclosing ranges back to back; slot_layout() says where each lands and where
// the slab's first byte is inside it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace strata::offload {

inline constexpr int kExpertParts = 3;  // gate, up, down

// One contiguous byte range of a model file.
struct SlabRange {
    uint32_t file = 0;    // index into StoreTable::files
    uint64_t offset = 0;  // from the start of the file
    uint64_t bytes = 0;
};

struct ExpertSlabs {
    std::array<SlabRange, kExpertParts> part;  // gate, up, down
};

// What runtime/ hands down.
struct StoreTable {
    std::vector<std::string> files;  // shard paths, in shard order
    int64_t n_layer = 0;
    int64_t n_expert = 0;
    std::vector<ExpertSlabs> experts;  // (n_layer, n_expert); zero-byte ranges where a layer has
                                       // no routed experts (leading dense blocks)
    uint64_t resident_bytes = 0;       // every tensor byte that is not a routed expert
};

// Where one part of an expert lands in its slot.
struct PartInSlot {
    uint64_t slot_offset = 0;  // aligned start of the enclosing range within the slot
    uint64_t read_offset = 0;  // aligned file offset of the enclosing range
    uint64_t read_bytes = 0;   // aligned length of the enclosing range
    uint64_t needed = 0;       // bytes from read_offset up to the slab's last byte
    uint64_t data_offset = 0;  // the slab's first byte within the slot
};

class ExpertStore {
  public:
    // Checks the table: sizes consistent, every range inside its file (stat), files readable.
    // Throws strata::Error naming the file or layer at fault.
    explicit ExpertStore(StoreTable table);

    const StoreTable& table() const { return table_; }
    const std::vector<std::string>& files() const { return table_.files; }
    int64_t n_layer() const { return table_.n_layer; }
    int64_t n_expert() const { return table_.n_expert; }
    bool has_experts(int64_t layer) const { return layer_has_[static_cast<size_t>(layer)]; }
    const ExpertSlabs& slabs(int64_t layer, int64_t expert) const {
        return table_.experts[static_cast<size_t>(layer * table_.n_expert + expert)];
    }

    // The layout of one expert's three parts in a slot.
    std::array<PartInSlot, kExpertParts> slot_layout(int64_t layer, int64_t expert) const;
    // Bytes one slot needs: the largest expert's aligned footprint.
    uint64_t slot_bytes() const { return slot_bytes_; }
    // Routed experts in all (layers with experts × n_expert) and their slab bytes.
    int64_t n_routed() const { return n_routed_; }
    uint64_t expert_bytes() const { return expert_bytes_; }
    uint64_t resident_bytes() const { return table_.resident_bytes; }

  private:
    StoreTable table_;
    std::vector<bool> layer_has_;  // (n_layer)
    uint64_t slot_bytes_ = 0;
    int64_t n_routed_ = 0;
    uint64_t expert_bytes_ = 0;
};

}  // namespace strata::offload
