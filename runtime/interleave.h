// Load-time regrouping of the matrices a forward pass multiplies into the interleaved layout
// of simd/repack.h, at the tensors' own addresses in the file's mapping: each is built in fresh
// anonymous memory whose pages then replace the mapped ones (the file is never written, and
// RSS counts the weights once). The products give the same bits either way; --no-repack
// (SessionOptions::repack) turns it off.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/model.h"

namespace strata {

// What regrouping leaves in the file's rows: the weights a GPU tier takes, whose pages of the
// mapping are handed back once uploaded (which only the file's own pages can be).
struct KeepRows {
    std::vector<std::string> tensors;  // whole
    // Of stacks (expert slabs): by stack name, slab e of ne[2] is kept.
    std::map<std::string, std::vector<bool>, std::less<>> slabs;
};

// Interleaves every tensor that qualifies and is not yet: a weight matrix of the forward pass
// (not token_embd, which is read by rows, nor the legacy attn_kv_b) whose type has an
// interleaved tile on this CPU and whose rows per matrix (ne[1]) are a multiple of 16. Routed
// experts are left alone when `routed_from_cache` (an expert cache reads them from the file).
// Nothing is rewritten when the weights a pass reads from the mapping exceed the memory
// available (the rewritten pages could not be dropped and paged in again), nor what `keep`
// names: a stack with kept slabs is regrouped slab by slab around them
// (gguf::Tensor::interleaved_slabs). Returns the bytes rewritten by this call.
uint64_t interleave_weights(const Model& model, bool routed_from_cache, const KeepRows& keep = {});

// Whether interleave_weights would take this tensor (given whether routed experts come from a
// cache).
bool interleavable(const gguf::Tensor& t, bool routed_from_cache);

}  // namespace strata
