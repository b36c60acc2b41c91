// The expert store's table of a model: where each routed expert's gate, up and down slabs lie
// in the model's files, and the bytes of everything else (offload/expert_store.h).
#pragma once

#include "offload/expert_store.h"
#include "runtime/model.h"

namespace strata {

// Empty (n_layer 0) for a model without routed experts. The file must have been opened from disk
// (gguf::File::open), not parsed from memory.
offload::StoreTable expert_table(const Model& model);

}  // namespace strata
