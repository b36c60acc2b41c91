// A running conversation with a model: the KV cache, the tokens it holds, prefill and decode.
//
//   Session s(model, {.n_ctx = 4096});
//   std::span<const float> logits = s.prefill(prompt_ids);   // reuses a cached common prefix
//   while (...) { int32_t id = sampler.sample(logits); logits = s.decode({&id, 1}); }
//
// Prompts are evaluated in batches of n_batch tokens (one forward pass each, causal mask);
// decoding is one token per call. How the tokens before a token were batched changes its logits
// by float rounding only, exactly as it does in llama.cpp (arch/forward.h). Nothing is evaluated
// when the context would overflow: the call throws strata::Error.
//
// Several sessions may share one Engine (runtime/engine.h: the forward pass and expert cache),
// each with its own KV cache and tokens; decode_batch then appends one token to each of them in
// one pass, every row's logits bit for bit what decode() of that token alone gives.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "offload/expert_cache.h"
#include "runtime/gpu_tier.h"
#include "runtime/kv_cache.h"
#include "runtime/model.h"

namespace strata {

class Engine;

struct SessionOptions {
    int64_t n_ctx = 0;      // cache positions; 0: the training context, at most 4096
    int64_t n_batch = 512;  // tokens per forward pass when prefilling
    int n_threads = 0;      // threads of a forward pass; 0: OpenMP's default (one per core)
    // deepseek2 files with the legacy attn_kv_b: compressed cache (default) or per-head K/V.
    MlaLegacy mla_legacy = MlaLegacy::Compressed;
    // --ram-budget in bytes; 0: none, routed experts are read from the file mapping. With one,
    // the weights outside routed experts, the KV cache and an expert cache must fit in it, and
    // routed experts come through the cache (offload/expert_cache.h).
    uint64_t ram_budget = 0;
    offload::Policy cache_policy = offload::Policy::Lru;
    std::string hot_profile;        // Policy::Pinned: the hot set
    std::string trace_path;         // routing trace written by the expert cache
    offload::ReaderOptions reader;  // queue depth, forced pread, test fault hook
    uint32_t prefetch_reads = offload::kPrefetchReads;  // --prefetch
    // Regroup Q4_K matrices in memory for the interleaved kernels at load (runtime/interleave.h;
    // same logits either way). --no-repack: products read the file's layout.
    bool repack = true;
    // --gpu-budget: the planner's GPU part on a device (runtime/gpu_tier.h); budget 0: none.
    GpuOptions gpu;
};

class Session {
  public:
    // A session with an engine of its own. Throws strata::Error when a weight's type cannot be
    // computed or the cache does not fit.
    explicit Session(const Model& model, const SessionOptions& options = {});
    // A session on a shared engine: a KV cache of engine->n_ctx() positions of its own.
    explicit Session(std::shared_ptr<Engine> engine);
    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;

    const Model& model() const;
    const Engine& engine() const { return *engine_; }
    int64_t n_ctx() const { return cache_.n_ctx(); }
    int64_t n_vocab() const { return n_vocab_; }
    int64_t n_past() const { return static_cast<int64_t>(tokens_.size()); }
    // The tokens whose keys and values the cache holds, in order.
    const std::vector<int32_t>& tokens() const { return tokens_; }
    size_t cache_bytes() const { return cache_.bytes(); }
    // Threads a forward pass runs on.
    int n_threads() const;
    // The expert cache under --ram-budget, or null (no budget, or no routed experts).
    offload::ExpertCache* expert_cache();
    const offload::ExpertCache* expert_cache() const;
    // The GPU tier under --gpu-budget, or null.
    const GpuTier* gpu_tier() const;
    // How often the router chose each routed expert since the engine began (all sessions on it):
    // [layer][expert], empty rows for dense layers, empty for models without routed experts.
    const std::vector<std::vector<uint64_t>>& routing_counts() const;

    // Appends tokens to the context; returns the last one's logits (n_vocab floats, valid until
    // the next call).
    std::span<const float> decode(std::span<const int32_t> tokens);
    // Appends tokens; `logits` becomes tokens.size() rows of n_vocab floats, one per token.
    void decode_all(std::span<const int32_t> tokens, std::vector<float>& logits);

    // Makes the context exactly `tokens`, keeping the longest prefix it shares with what the cache
    // holds and evaluating the rest (at least the last token, for its logits); returns the last
    // token's logits. reused() tells how many tokens were kept.
    std::span<const float> prefill(std::span<const int32_t> tokens);
    int64_t reused() const { return reused_; }

    // Appends tokens[i] to sessions[i] for every i, as one forward pass (Forward::run_batch);
    // `logits` becomes sessions.size() rows of n_vocab floats, row i bit for bit what
    // sessions[i]->decode of tokens[i] alone would give. The sessions must be distinct and share
    // one engine. Nothing is evaluated when a token id is outside the vocabulary or a session's
    // context is full: throws strata::Error naming the row.
    static void decode_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens,
                             std::vector<float>& logits);

    // Forgets everything after the first n tokens (n ≤ n_past()).
    void truncate(int64_t n);
    void clear() { truncate(0); }

  private:
    // Checks ids and room, then runs tokens in batches; logits as Forward::run.
    void evaluate(std::span<const int32_t> tokens, bool all_logits, float* logits);

    std::shared_ptr<Engine> engine_;  // the forward pass, shared with other sessions or not
    KvCache cache_;
    int64_t n_vocab_;
    std::vector<int32_t> tokens_;  // (n_past) what the cache holds
    std::vector<float> last_;      // (n_vocab) logits of the last evaluated token
    int64_t reused_ = 0;
};

}  // namespace strata
