// Options and helpers shared by the inference commands (eval, run, bench).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "runtime/model.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace strata::cli {

// "1,2,3" (commas and/or spaces) → ids; throws UsageError naming --tokens on anything else.
std::vector<int32_t> parse_token_list(const std::string& text);

// A size flag (24G, 512M; "0" is 0): as --ram-budget reads them, in binary units, errors naming
// `flag`. `physical`: what a percentage is of (0: percentages refused).
uint64_t parse_size(const std::string& flag, const std::string& text, uint64_t physical);

// Opens and binds a model file.
Model load_model(const std::string& path);

// --ctx, --batch, --threads, --mla-legacy and the budget options.
void add_session_options(CLI::App* cmd, SessionOptions& options);
// --no-repack, --ram-budget SIZE|PCT, --cache-policy lru|lfu|pinned, --hot-profile FILE,
// --io-queue-depth N, --prefetch N, --force-pread, --trace-out FILE, and the GPU tier's
// --gpu-budget SIZE, --gpu-device cuda|host, --usage PROFILE.
void add_budget_options(CLI::App* cmd, SessionOptions& options);
// The GPU tier's summary and the expert cache's statistics on stderr (nothing without
// budgets): totals, and with `per_layer` one line per layer.
void print_cache_stats(const Session& session, bool per_layer);
// --mla-legacy compressed|per-head: how deepseek2 files with the legacy attn_kv_b keep their
// cache (kv_cache.h, MlaLegacy).
void add_mla_legacy_option(CLI::App* cmd, MlaLegacy& mla_legacy);

// Sampling flags. Each flag given overrides the model's defaults (default_sampling); --seed
// absent means a fresh random seed.
struct SamplingFlags {
    std::optional<float> temperature, top_p, min_p, repeat_penalty;
    std::optional<int64_t> top_k, repeat_last_n;
    std::optional<uint64_t> seed;
    bool greedy = false;

    void add(CLI::App* cmd);
    SamplerParams resolve(const Model& model) const;
};

// --routing-profile FILE: where run/bench write how often each routed expert was chosen.
void add_routing_profile_option(CLI::App* cmd, std::string& path);
// Writes the session's routing counts as a routing profile (scheduler/routing_profile.h) to
// `path`; nothing when `path` is empty. Throws strata::Error naming the file.
void write_routing_profile(const Session& session, const std::string& path);
// The share of routings taken by the most chosen `fraction` of experts (at least one) in each
// layer with routed experts, averaged over those layers; 0 when nothing was routed.
double routing_top_share(const std::vector<std::vector<uint64_t>>& counts, double fraction);

// Peak resident memory of this process in bytes (VmHWM), or 0 when unknown.
uint64_t peak_rss_bytes();

}  // namespace strata::cli
