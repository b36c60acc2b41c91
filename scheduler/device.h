// A compute device with memory of its own, as the GPU tier sees it: weights are uploaded once
// (whole tensors, or one routed expert's slab) into a budget, and products run there on the
// device's copy. The host implementation keeps the copies in RAM and runs the CPU's own kernels
// (simd::matmul), so a split execution through it must give the CPU-only result bit for bit:
// it tests placement, budgets and transfers on every machine, CI included. A CUDA device
// implements the same interface and is compared against it under a stated tolerance.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "simd/quant.h"

namespace strata::scheduler {

class Device {
  public:
    virtual ~Device() = default;
    virtual std::string_view name() const = 0;
    virtual uint64_t budget_bytes() const = 0;
    virtual uint64_t used_bytes() const = 0;
    // Bytes copied host to device so far: what would cross PCIe.
    virtual uint64_t uploaded_bytes() const = 0;

    // Copies `bytes` of weight data to device memory and returns its buffer id. Throws
    // strata::Error naming `what` (the tensor, or tensor and expert) when the budget would be
    // passed; nothing is allocated then.
    virtual int64_t upload(std::string_view what, const uint8_t* data, size_t bytes) = 0;

    // y[t * n_out + r] = row r of the buffer's matrix (n_out rows of n_in elements of `type`,
    // contiguous) · x row t (n_in floats), for t < n_rows. Throws strata::Error when the shape
    // does not fit the buffer.
    virtual void matmul(int64_t buffer, quant::Type type, int64_t n_in, int64_t n_out,
                        const float* x, int64_t n_rows, float* y) = 0;
};

// The host-memory device: budgeted copies in RAM, the CPU's kernels.
std::unique_ptr<Device> make_host_device(uint64_t budget_bytes);

}  // namespace strata::scheduler
