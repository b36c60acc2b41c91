// The forward pass of one architecture: tokens in, logits out, keys and values into the cache.
//
// A batch of tokens is computed in one pass with a causal mask: token t at position pos0 + t
// attends to every cached position up to its own. The arithmetic is llama.cpp's for the same
// batch, including where the reference's order depends on the batch (float weights are summed
// in another order for one row than for several, and attention over a cache view that grows in
// steps of 256), so a prompt evaluated in pieces differs from one batch by float rounding only.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/kv_cache.h"
#include "runtime/model.h"

namespace strata {
class DeviceTier;
namespace offload {
class ExpertCache;
}

// One row of a batch of independent sequences (Forward::run_batch): the next token of one
// sequence, at its position in that sequence's own cache.
struct BatchRow {
    int32_t token = 0;
    int64_t pos = 0;
    KvCache* cache = nullptr;
};

class Forward {
  public:
    explicit Forward(int64_t n_vocab) : n_vocab_(n_vocab) {}
    virtual ~Forward() = default;

    // The cache rows this architecture keeps per token and layer.
    virtual KvLayout kv_layout() const = 0;

    // Runs tokens at positions pos0, pos0 + 1, …; writes their cache rows. With all_logits,
    // `logits` receives tokens.size() rows of n_vocab floats, otherwise the last token's row only;
    // null skips the output head.
    // Callers check token ids and that pos0 + tokens.size() <= cache.n_ctx().
    virtual void run(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits,
                     float* logits) = 0;

    // One token of each of several sequences, each at its own position in its own cache (the
    // caches distinct, of this layout), as one pass: the products read each weight once for all
    // rows and tokens routed to the same expert are multiplied together. `logits` receives
    // rows.size() rows of n_vocab floats. Every row's logits are bit for bit what run() gives
    // that token alone at that position: rows do not change each other's rounding.
    // Callers check token ids and that every pos < its cache's n_ctx().
    virtual void run_batch(std::span<const BatchRow> rows, float* logits);

    // From now on, multiply the weights uploaded to tier's device there (split execution;
    // runtime/device_weights.h); null: everything on the CPU again. The tier outlives this pass.
    virtual void use_device(const DeviceTier* tier) = 0;

    // From now on, take routed experts from `cache` (which outlives this forward pass) instead
    // of the file mapping; null goes back to the mapping. With `regroup`, an expert that a batch
    // multiplies for several tokens is regrouped in its slot for the interleaved kernels
    // (simd/repack.h; same bits) and stays so until the slot is read again. Architectures
    // without routed experts ignore it.
    virtual void use_expert_cache(offload::ExpertCache* cache, bool regroup) {
        (void)cache;
        (void)regroup;
    }

    // About the most the pass's own buffers (activations, their conversions, intermediate
    // products) take for passes of up to n_rows tokens over n_ctx positions, counted against
    // --ram-budget beside the weights, the KV cache and the expert slots. 0: not estimated (the
    // architectures without routed experts, whose budget holds the whole file anyway).
    virtual uint64_t workspace_bytes(int64_t n_rows, int64_t n_ctx) const {
        (void)n_rows;
        (void)n_ctx;
        return 0;
    }

    // How often the router chose each routed expert since construction: [layer][expert], empty
    // rows for layers without routed experts; empty for architectures without them. Counts what
    // ran: a pass that needs only the last token's logits runs (and counts) the last layer for
    // that token alone.
    virtual const std::vector<std::vector<uint64_t>>& routing_counts() const {
        static const std::vector<std::vector<uint64_t>> none;
        return none;
    }

  protected:
    int64_t n_vocab_ = 0;
};

// The forward pass of the model's architecture; throws strata::Error naming the tensor when a
// weight has a type Strata cannot multiply yet. `mla_legacy` matters for deepseek2 files with
// the legacy attn_kv_b only.
std::unique_ptr<Forward> make_forward(const Model& model,
                                      MlaLegacy mla_legacy = MlaLegacy::Compressed);

}  // namespace strata
