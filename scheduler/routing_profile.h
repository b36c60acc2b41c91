// Measured expert usage: how often the router chose each routed expert of each layer. Written by
// `strata run/bench --routing-profile FILE` (the per-layer counters of the deepseek2 forward
// pass), read by the placement planner to put the hottest experts on the GPU.
//
// The file is JSON, one entry per MoE layer, `counts` holding n_expert selection counts:
//   {"layers": [{"layer": 3, "counts": [12, 0, 7, ...]}, ...]}
// Layers missing from the file are taken as uniform; extra keys are ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::scheduler {

struct LayerCounts {
    int64_t layer = 0;
    std::vector<uint64_t> counts;  // (n_expert): times each expert was selected
};

struct RoutingProfile {
    std::vector<LayerCounts> layers;  // in the order read or recorded
    bool empty() const { return layers.empty(); }
};

// A profile from per-layer counters ([layer][expert] selections), as the forward pass keeps
// them; layers with no counters (dense layers) are left out.
RoutingProfile routing_profile_from_counts(const std::vector<std::vector<uint64_t>>& counts);

// Reads and checks a profile: a JSON object with a "layers" array of {"layer", "counts"}.
// Throws strata::Error naming the file and what is wrong.
RoutingProfile read_routing_profile(const std::string& path);

// The profile as the file holds it (one line per layer, for diffs).
std::string routing_profile_json(const RoutingProfile& profile);

// Writes the profile to `path` (replacing it); throws strata::Error naming the file on failure.
void write_routing_profile(const std::string& path, const RoutingProfile& profile);

}  // namespace strata::scheduler
