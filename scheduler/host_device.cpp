// The host-memory Device (scheduler/device.h).
#include <vector>

#include "runtime/error.h"
#include "scheduler/device.h"
#include "simd/matmul.h"

namespace strata::scheduler {
namespace {

class HostDevice final : public Device {
  public:
    explicit HostDevice(uint64_t budget) : budget_(budget) {}

    std::string_view name() const override { return "host"; }
    uint64_t budget_bytes() const override { return budget_; }
    uint64_t used_bytes() const override { return used_; }
    uint64_t uploaded_bytes() const override { return uploaded_; }

    int64_t upload(std::string_view what, const uint8_t* data, size_t bytes) override {
        if (bytes > budget_ - used_)
            fail("device '{}': uploading {} ({} bytes) would pass its budget of {} bytes ({} used)",
                 name(), what, bytes, budget_, used_);
        buffers_.emplace_back(data, data + bytes);
        used_ += bytes;
        uploaded_ += bytes;
        return static_cast<int64_t>(buffers_.size()) - 1;
    }

    void matmul(int64_t buffer, quant::Type type, int64_t n_in, int64_t n_out, const float* x,
                int64_t n_rows, float* y) override {
        if (buffer < 0 || buffer >= static_cast<int64_t>(buffers_.size()))
            fail("device '{}': no buffer {}", name(), buffer);
        const std::vector<uint8_t>& b = buffers_[static_cast<size_t>(buffer)];
        const size_t row = quant::row_bytes(type, n_in);
        if (n_out < 0 || row * static_cast<size_t>(n_out) > b.size())
            fail("device '{}': buffer {} holds {} bytes, not {} rows of {} bytes", name(), buffer,
                 b.size(), n_out, row);
        const simd::Matrix w{b.data(), type, n_in, n_out, row};
        simd::matmul(w, x, n_in, n_rows, y, n_out, scratch_);
    }

  private:
    uint64_t budget_ = 0;
    uint64_t used_ = 0;
    uint64_t uploaded_ = 0;
    std::vector<std::vector<uint8_t>> buffers_;  // (buffers): each an uploaded tensor or slab
    simd::Activations scratch_;
};

}  // namespace

std::unique_ptr<Device> make_host_device(uint64_t budget_bytes) {
    return std::make_unique<HostDevice>(budget_bytes);
}

}  // namespace strata::scheduler
