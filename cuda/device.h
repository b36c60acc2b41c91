// The optional GPU tier: device discovery. Built only when CMake finds the CUDA toolkit
// (STRATA_HAVE_CUDA); without it the query answers "no devices".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::cuda {

struct DeviceInfo {
    int index = 0;
    std::string name;
    uint64_t total_bytes = 0;
    uint64_t free_bytes = 0;
    int compute_major = 0;
    int compute_minor = 0;
};

// Devices the CUDA runtime sees; empty when there is no driver or no GPU. `why` (optional)
// receives the reason when the list is empty.
std::vector<DeviceInfo> devices(std::string* why = nullptr);

}  // namespace strata::cuda
