// The host-memory Device (scheduler/device.h).
#include <cstring>
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
    uint64_t products() const override { return products_; }
    bool supports(quant::Type type) const override { return simd::can_multiply(type); }
    // It runs the CPU's kernels, the interleaved ones included.
    bool takes_interleaved() const override { return true; }

    int64_t upload(std::string_view what, const uint8_t* data, size_t bytes) override {
        if (bytes > budget_ - used_)
            fail("device '{}': uploading {} ({} bytes) would pass its budget of {} bytes ({} used)",
                 name(), what, bytes, budget_, used_);
        buffers_.emplace_back(data, data + bytes);
        used_ += bytes;
        uploaded_ += bytes;
        return static_cast<int64_t>(buffers_.size()) - 1;
    }

    void matmul(const DeviceMatrix& w, const simd::Activations& a, float* y, int64_t y_stride,
                simd::Path path) override {
        const std::vector<uint8_t>& b = buffer(w.buffer);
        const size_t row = quant::row_bytes(w.type, w.n_in);
        const bool fits =
            w.n_out > 0 && w.row_stride >= row && w.offset <= b.size() &&
            b.size() - w.offset >= row &&
            (b.size() - w.offset - row) / w.row_stride >= static_cast<size_t>(w.n_out - 1);
        if (!fits)
            fail("device '{}': buffer {} holds {} bytes, not {} rows of {} bytes from byte {}",
                 name(), w.buffer, b.size(), w.n_out, row, w.offset);
        if (a.type() != quant::traits(w.type).partner || a.n_in() != w.n_in)
            fail("device '{}': activations of {} elements in the wrong format for buffer {}",
                 name(), a.n_in(), w.buffer);
        const simd::Matrix m{b.data() + w.offset, w.type, w.n_in, w.n_out, w.row_stride,
                             w.layout};
        simd::matmul(m, a, y, y_stride, path);
        ++products_;
    }

    void read(int64_t id, size_t offset, size_t bytes, uint8_t* dst) const override {
        const std::vector<uint8_t>& b = buffer(id);
        if (offset > b.size() || bytes > b.size() - offset)
            fail("device '{}': buffer {} holds {} bytes, not {} from byte {}", name(), id, b.size(),
                 bytes, offset);
        std::memcpy(dst, b.data() + offset, bytes);
    }

  private:
    const std::vector<uint8_t>& buffer(int64_t id) const {
        if (id < 0 || id >= static_cast<int64_t>(buffers_.size()))
            fail("device '{}': no buffer {}", name(), id);
        return buffers_[static_cast<size_t>(id)];
    }

    uint64_t budget_ = 0;
    uint64_t used_ = 0;
    uint64_t uploaded_ = 0;
    uint64_t products_ = 0;
    std::vector<std::vector<uint8_t>> buffers_;  // (buffers): each an uploaded tensor or slab
};

}  // namespace

std::unique_ptr<Device> make_host_device(uint64_t budget_bytes) {
    return std::make_unique<HostDevice>(budget_bytes);
}

}  // namespace strata::scheduler
