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

#include "simd/matmul.h"
#include "simd/quant.h"

namespace strata::scheduler {

// A weight matrix in device memory: n_out rows of n_in elements of `type`, row r at byte
// offset + r * row_stride of buffer `buffer` (a whole tensor, one head's slice of it, or an
// expert's slab).
struct DeviceMatrix {
    int64_t buffer = -1;
    size_t offset = 0;
    quant::Type type = quant::Type::F32;
    int64_t n_in = 0;
    int64_t n_out = 0;
    size_t row_stride = 0;
    simd::Layout layout = simd::Layout::Rows;  // as uploaded (simd/repack.h)
};

class Device {
  public:
    virtual ~Device() = default;
    virtual std::string_view name() const = 0;
    virtual uint64_t budget_bytes() const = 0;
    virtual uint64_t used_bytes() const = 0;
    // Bytes copied host to device so far: what would cross PCIe.
    virtual uint64_t uploaded_bytes() const = 0;
    // Products run here so far.
    virtual uint64_t products() const = 0;
    // Whether products of weights of this type can run here.
    virtual bool supports(quant::Type type) const = 0;
    // Whether weights interleaved for the CPU's kernels (simd/repack.h) can be uploaded as they
    // are; otherwise they are put back in rows first.
    virtual bool takes_interleaved() const { return false; }

    // Copies `bytes` of weight data to device memory and returns its buffer id. Throws
    // strata::Error naming `what` (the tensor, or tensor and expert) when the budget would be
    // passed; nothing is allocated then.
    virtual int64_t upload(std::string_view what, const uint8_t* data, size_t bytes) = 0;

    // y[t * y_stride + r] = row r of the matrix `w` names in device memory · activation row t
    // of `a` (already in the weight type's partner format, simd/matmul.h), for every row of a.
    // `path` is the product's place in the reference's order (simd::Path). Throws strata::Error
    // when w does not lie inside its buffer.
    virtual void matmul(const DeviceMatrix& w, const simd::Activations& a, float* y,
                        int64_t y_stride, simd::Path path) = 0;

    // Copies `bytes` bytes at `offset` of a buffer to host memory (a row of an embedding table).
    // Throws strata::Error when they do not lie inside it.
    virtual void read(int64_t buffer, size_t offset, size_t bytes, uint8_t* dst) const = 0;
};

// The host-memory device: budgeted copies in RAM, the CPU's kernels.
std::unique_ptr<Device> make_host_device(uint64_t budget_bytes);

// The first CUDA GPU (scheduler/cuda_device.cpp). Throws strata::Error when the build has no
// CUDA tier, there is no GPU, or the budget is more than the card has free.
std::unique_ptr<Device> make_cuda_device(uint64_t budget_bytes);

}  // namespace strata::scheduler
