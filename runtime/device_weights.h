// Uploads the GPU tier of a placement to a Device: every tensor the plan put on the GPU, and
// every routed expert slab it put there, once each, within the device's budget, each one's
// pages of the file mapping handed back once it is there (so RSS does not count it twice). The
// forward pass finds its weights' device copies through DeviceTier.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "runtime/model.h"
#include "scheduler/device.h"
#include "scheduler/plan.h"

namespace strata {

struct DeviceWeights {
    std::map<std::string, int64_t> tensors;                    // name → buffer
    std::map<std::pair<std::string, int64_t>, int64_t> slabs;  // (stack name, expert) → buffer
    uint64_t bytes = 0;                                        // uploaded
};

// `info` and `placement` must come from this model (model_info(model), plan(info, ...)).
// Throws strata::Error naming the tensor when a tensor is not in the file or the device's budget
// would be passed.
DeviceWeights upload_placement(scheduler::Device& device, const Model& model,
                               const scheduler::ModelInfo& info,
                               const scheduler::Placement& placement);

// Where the uploaded weights are, by the address of their bytes in the file's mapping: a
// forward pass holds simd::Matrix views of the mapping, and a view that lies inside an uploaded
// tensor or slab is multiplied on the device instead (a head's slice of a tensor included).
class DeviceTier {
  public:
    DeviceTier(scheduler::Device& device, const Model& model, const DeviceWeights& weights);

    scheduler::Device& device() const { return *device_; }
    // The device copy of the mapped rows w views, or nothing when they are not all in one
    // uploaded buffer.
    std::optional<scheduler::DeviceMatrix> find(const simd::Matrix& w) const;
    // The buffer and offset of `bytes` mapped bytes at `data`, when they were uploaded.
    std::optional<std::pair<int64_t, size_t>> find(const uint8_t* data, size_t bytes) const;

  private:
    struct Range {
        size_t bytes = 0;
        int64_t buffer = -1;
        simd::Layout layout = simd::Layout::Rows;  // of the device copy
    };
    const Range* locate(const uint8_t* data, size_t bytes, size_t* offset) const;

    scheduler::Device* device_;
    std::map<const uint8_t*, Range> ranges_;  // by first mapped byte
};

}  // namespace strata
