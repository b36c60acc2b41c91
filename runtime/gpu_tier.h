// A session's GPU tier under --gpu-budget: the planner's placement for that budget
// (scheduler/plan.h), its GPU part uploaded to the device once, and the forward pass multiplying
// those weights there (split execution). The device is a CUDA card (products only, so far: the
// element-wise operations, attention and routing stay on the CPU, and activations cross PCIe
// for every product), or the host-memory device (scheduler/device.h), which runs the CPU's
// kernels on its own copies: a split through it gives the CPU-only logits bit for bit, so
// placements are tested on any machine.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/device_weights.h"
#include "runtime/interleave.h"
#include "runtime/model.h"
#include "scheduler/device.h"
#include "scheduler/plan.h"

namespace strata {

class Forward;

struct GpuOptions {
    uint64_t budget = 0;      // --gpu-budget bytes; the planner keeps its reserve out of it
    std::string device;       // "cuda" (default) or "host"
    std::string usage_path;   // --usage: a routing profile (strata run --routing-profile)
    int64_t reserve = -1;     // bytes kept free on the card; < 0: the planner's default
    uint64_t ram_budget = 0;  // --ram-budget; 0: everything else stays in RAM
    // The planner's hardware figures; unset: the cached ones (strata plan --probe), or else the
    // published ones.
    std::optional<scheduler::Figures> figures;
};

class GpuTier {
  public:
    // The planner's placement for the budget (the cached hardware figures, or the published
    // ones) and a KV cache of n_ctx positions. Throws strata::Error on a bad budget or profile.
    static scheduler::Placement plan(const Model& model, const GpuOptions& options, int64_t n_ctx);
    // The tensors and expert slabs `placement` puts on the GPU: the weights regrouping leaves as
    // they are, so that their pages of the file mapping can be handed back once uploaded
    // (runtime/interleave.h).
    static KeepRows kept_rows(const Model& model, const scheduler::Placement& placement);

    // Uploads the GPU part of `placement` (from plan()) and hands it to `forward`, which must
    // not outlive this tier. Throws strata::Error when the device is unknown or missing, or the
    // budget is passed.
    GpuTier(const Model& model, Forward& forward, const GpuOptions& options,
            scheduler::Placement placement);
    ~GpuTier();
    GpuTier(const GpuTier&) = delete;
    GpuTier& operator=(const GpuTier&) = delete;

    const scheduler::Placement& placement() const { return placement_; }
    const scheduler::Device& device() const { return *device_; }
    const DeviceWeights& weights() const { return weights_; }
    // One line for --verbose: device, what was uploaded, the budget.
    std::string summary() const;

  private:
    Forward* forward_;
    scheduler::Placement placement_;
    std::unique_ptr<scheduler::Device> device_;
    DeviceWeights weights_;
    std::unique_ptr<DeviceTier> tier_;
};

}  // namespace strata
