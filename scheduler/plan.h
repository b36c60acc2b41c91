// The placement planner: where each tensor (and each routed expert's slabs) of a model lives —
// GPU, RAM or NVMe behind the RAM cache — under a GPU and a RAM budget, and how fast that will
// run. plan() is a pure function of the model's shape, the hardware figures, the budgets and the
// measured expert usage: it reads no tensor data, so it runs on shape-only models of any size.
//
// Order of preference for the GPU: the parts every token reads (attention, norms, router,
// shared experts, leading dense FFNs, the output head) and the KV cache for --ctx, then the
// hottest routed experts by usage until the budget less a reserve for activations and workspace
// is spent. Dense models compare whole layers on the GPU against attention-only splits and keep
// whichever the cost model (scheduler/cost.h) predicts faster.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/cost.h"
#include "scheduler/routing_profile.h"

namespace strata::scheduler {

// What a tensor serves; decides its order of preference.
enum class Part {
    Attention,      // attn_* and rope_freqs: every token
    Norm,           // *_norm: every token, tiny
    Router,         // ffn_gate_inp, exp_probs_b
    SharedExperts,  // *_shexp
    DenseFfn,       // ffn_gate/up/down of dense layers (all of a dense model's FFN)
    Output,         // output.weight: one full matrix-vector per token
    TokenEmbd,      // token_embd: one row looked up per token
    RoutedExperts,  // *_exps: stacks of n_expert slabs, n_expert_used of them per token
    Other,
};
std::string_view part_name(Part part);

// Where a tensor or slab is read from. NVMe-homed slabs are read through the RAM cache, whose
// size is a budget (Placement::ram_cache_bytes), not a home: no slab is placed "in the cache".
enum class Tier { Gpu, Ram, Nvme };
inline constexpr int kTierCount = 3;
std::string_view tier_name(Tier tier);

struct TensorInfo {
    std::string name;
    std::string type;    // "q4_K", "f32", ...
    uint64_t bytes = 0;  // data bytes of the whole tensor
    int64_t n_elements = 0;
    Part part = Part::Other;
    int64_t layer = -1;    // block index; -1 outside blocks
    int64_t n_expert = 0;  // routed stacks: slabs along the last dimension; 0 otherwise

    uint64_t slab_bytes() const {
        return n_expert > 0 ? bytes / static_cast<uint64_t>(n_expert) : bytes;
    }
};

// A model's shape as the planner needs it; built from a GGUF header or a synth preset
// (runtime/plan_model.h), never from tensor data.
struct ModelInfo {
    std::string name;
    std::string arch;  // "deepseek2", "llama", "qwen2"
    int64_t n_layer = 0;
    int64_t n_embd = 0;
    int64_t n_expert = 0;  // 0 for dense models
    int64_t n_expert_used = 0;
    uint64_t kv_bytes_per_token = 0;  // all layers: MLA's compressed row or GQA's K and V rows
    std::vector<TensorInfo> tensors;

    bool moe() const { return n_expert > 0; }
};

struct Budgets {
    uint64_t gpu_bytes = 0;  // 0: no GPU
    uint64_t ram_bytes = 0;
    // Kept free on the GPU for activations, the compute workspace and the CUDA context; < 0
    // picks the default (kDefaultGpuReserve, at most an eighth of the card).
    int64_t gpu_reserve_bytes = -1;
    int64_t ctx = 4096;  // KV cache positions
};
inline constexpr uint64_t kDefaultGpuReserve = 1ull << 30;

// How a dense model is split between the GPU and the CPU.
enum class DenseSplit {
    None,           // MoE models, or everything on one side
    WholeLayers,    // the first gpu_layers blocks whole on the GPU
    AttentionOnly,  // every block's attention (and KV) on the GPU, FFNs of the first gpu_layers too
};
std::string_view split_name(DenseSplit split);

struct TensorPlacement {
    Tier tier = Tier::Ram;    // whole tensors; for routed stacks the tier of most slabs
    std::vector<Tier> slabs;  // (n_expert): routed stacks only, one tier per expert
};

struct Placement {
    std::vector<TensorPlacement> tensors;  // (tensors): parallel to ModelInfo::tensors
    Tier kv_tier = Tier::Ram;              // RAM also when only some layers' part is on the GPU
    uint64_t kv_bytes = 0;
    uint64_t kv_gpu_bytes = 0;     // of kv_bytes: on the GPU (dense whole-layer splits: a share)
    uint64_t gpu_reserve = 0;      // kept free on the GPU when anything is placed there
    uint64_t ram_cache_bytes = 0;  // RAM cache slots in front of the NVMe-homed experts
    int64_t cache_slots = 0;       // ram_cache_bytes / slot_bytes
    uint64_t slot_bytes = 0;       // one expert of one layer: its gate, up and down slabs
    std::array<uint64_t, kTierCount> bytes{};  // weights (+ KV on its tier) per tier
    DenseSplit split = DenseSplit::None;
    int64_t gpu_layers = 0;  // dense splits: blocks (or FFNs) on the GPU
    Prediction prediction;

    // GPU bytes used, reserve included when anything is on the GPU; RAM bytes with the cache.
    uint64_t gpu_used() const;
    uint64_t ram_used() const;
};

// Plans a placement. Throws strata::Error naming --ram / --gpu when the parts that must be
// resident (everything but routed experts, and for dense models everything) fit nowhere.
Placement plan(const ModelInfo& model, const Figures& figures, const Budgets& budgets,
               const RoutingProfile& usage);

// Expected selections per token of each expert of each layer (n_expert_used spread by the
// profile's shares; uniform for layers the profile lacks): [n_layer][n_expert], empty rows for
// layers without routed experts. Throws strata::Error when a layer's count size is not n_expert.
std::vector<std::vector<double>> expert_usage(const ModelInfo& model, const RoutingProfile& usage);

// The cost model (scheduler/cost.h) on a given placement; `usage` as expert_usage() gives it.
// plan() chooses with it; tests check its monotonicity.
Prediction predict(const ModelInfo& model, const Placement& placement, const Figures& figures,
                   const std::vector<std::vector<double>>& usage);

}  // namespace strata::scheduler
