// Without the CUDA tier, device discovery answers "no devices".
#ifndef STRATA_HAVE_CUDA
#include "cuda/device.h"

namespace strata::cuda {

std::vector<DeviceInfo> devices(std::string* why) {
    if (why) *why = "this build has no CUDA tier (configure with the CUDA toolkit installed)";
    return {};
}

}  // namespace strata::cuda
#endif
