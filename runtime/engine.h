// What sequences of one model can share: the forward pass (weights, scratch, routing counters)
// and, under --ram-budget, the expert cache.
//
//   auto engine = std::make_shared<Engine>(model, options, /*n_seqs=*/4);
//   Session a(engine), b(engine);                  // each its own KV cache and tokens
//   Session::decode_batch(sessions, next, logits);  // one token of each, one pass
//
// A Session built from (model, options) makes an engine of its own (`strata run`). Sessions on
// one engine advance together through Session::decode_batch (Forward::run_batch), which is how
// `strata serve` batches the decode steps of its requests. An engine and its sessions are not
// thread-safe: they are used from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/gpu_tier.h"
#include "runtime/kv_cache.h"
#include "runtime/model.h"
#include "runtime/session.h"

namespace strata {

class Forward;

class Engine {
  public:
    // n_seqs: the sessions (KV caches of the options' n_ctx) that will share this engine; under a
    // RAM budget all their caches are counted before the expert cache takes the rest. Brings the
    // weights into memory (a progress line on a terminal). Throws strata::Error on bad options,
    // a weight type that cannot be computed, or a budget too small.
    Engine(const Model& model, const SessionOptions& options, int64_t n_seqs = 1);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const Model& model() const { return *model_; }
    Forward& forward() { return *forward_; }
    const KvLayout& kv_layout() const { return layout_; }
    int64_t n_ctx() const { return n_ctx_; }      // positions of each session's cache
    int64_t n_batch() const { return n_batch_; }  // prompt tokens per forward pass
    int64_t n_seqs() const { return n_seqs_; }
    // Threads of a forward pass as given; 0: OpenMP's default.
    int n_threads_option() const { return n_threads_; }
    // The expert cache under --ram-budget, or null (no budget, or no routed experts).
    offload::ExpertCache* expert_cache() { return experts_.get(); }
    const offload::ExpertCache* expert_cache() const { return experts_.get(); }
    // The GPU tier under --gpu-budget, or null.
    const GpuTier* gpu_tier() const { return gpu_.get(); }
    // What --ram-budget sets aside for the forward pass's own buffers (Forward::workspace_bytes
    // at n_batch or n_seqs rows, whichever is more), beside the weights, KV caches and slots.
    uint64_t workspace_bytes() const { return workspace_; }
    // Routing counts of every pass run on this engine, by any of its sessions (Forward).
    const std::vector<std::vector<uint64_t>>& routing_counts() const;

  private:
    // Builds the expert cache under options.ram_budget and hands it to the forward pass.
    void attach_budget(const SessionOptions& options, uint64_t kv_bytes);

    const Model* model_;
    std::unique_ptr<offload::ExpertCache> experts_;  // under a budget; outlives forward_
    std::unique_ptr<Forward> forward_;
    std::unique_ptr<GpuTier> gpu_;  // under --gpu-budget; destroyed before forward_
    KvLayout layout_;
    int64_t n_ctx_ = 0;
    int64_t n_batch_ = 0;
    int64_t n_seqs_ = 0;
    int n_threads_ = 0;
    uint64_t workspace_ = 0;
};

}  // namespace strata
