// Uploads the GPU tier of a placement to a Device: every tensor the plan put on the GPU, and
// every routed expert slab it put there, once each, within the device's budget. The split
// forward pass (not yet written) looks its device buffers up here.
#pragma once

#include <cstdint>
#include <map>
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

}  // namespace strata
