// expert_table: byte ranges of the routed experts of a model.
#include "runtime/expert_table.h"

#include "runtime/error.h"

namespace strata {

offload::StoreTable expert_table(const Model& model) {
    const HParams& hp = model.hparams();
    offload::StoreTable t;
    if (hp.n_expert <= 0) return t;
    for (const gguf::Shard& s : model.file().shards()) t.files.push_back(s.path);
    t.n_layer = hp.n_layer;
    t.n_expert = hp.n_expert;
    t.experts.resize(static_cast<size_t>(hp.n_layer * hp.n_expert));
    uint64_t routed = 0;
    bool any = false;
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        const LayerWeights& l = model.layers()[static_cast<size_t>(il)];
        const gguf::Tensor* parts[offload::kExpertParts] = {l.ffn_gate_exps, l.ffn_up_exps,
                                                            l.ffn_down_exps};
        if (!parts[0] || !parts[1] || !parts[2]) continue;
        for (int p = 0; p < offload::kExpertParts; ++p) {
            const gguf::Tensor& w = *parts[p];
            // Stacked [n_in, n_out, n_expert]: expert e is the e-th of ne[2] equal slabs.
            if (w.ne[2] != hp.n_expert || w.nbytes % static_cast<uint64_t>(hp.n_expert) != 0)
                fail("{}: {} experts stacked, expected {}", w.name, w.ne[2], hp.n_expert);
            const uint64_t slab = w.nbytes / static_cast<uint64_t>(hp.n_expert);
            for (int64_t e = 0; e < hp.n_expert; ++e) {
                offload::SlabRange& r = t.experts[static_cast<size_t>(il * hp.n_expert + e)]
                                            .part[static_cast<size_t>(p)];
                r.file = w.shard;
                r.offset = w.file_offset + static_cast<uint64_t>(e) * slab;
                r.bytes = slab;
            }
            routed += w.nbytes;
            any = true;
        }
    }
    if (!any) return {};
    uint64_t total = 0;
    for (const gguf::Tensor& w : model.file().tensors()) total += w.nbytes;
    t.resident_bytes = total - routed;
    return t;
}

}  // namespace strata
