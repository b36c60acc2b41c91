#include <cuda_runtime.h>

#include "cuda/device.h"

namespace strata::cuda {

std::vector<DeviceInfo> devices(std::string* why) {
    std::vector<DeviceInfo> out;
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        if (why) {
            if (err == cudaErrorNoDevice) {
                *why = "no CUDA devices";
            } else if (err == cudaErrorInsufficientDriver) {
                *why = "no NVIDIA driver, or one older than this build's CUDA runtime";
            } else {
                *why = cudaGetErrorString(err);
            }
        }
        return out;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        DeviceInfo d;
        d.index = i;
        d.name = prop.name;
        d.total_bytes = prop.totalGlobalMem;
        d.compute_major = prop.major;
        d.compute_minor = prop.minor;
        size_t free_b = 0, total_b = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
            d.free_bytes = free_b;
        out.push_back(d);
    }
    if (out.empty() && why) *why = "no CUDA devices";
    return out;
}

}  // namespace strata::cuda
