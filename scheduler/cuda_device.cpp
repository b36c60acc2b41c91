// The CUDA Device (scheduler/device.h): weights in the card's memory under a budget, products by
// cuda/kernels.h. Without the CUDA tier in the build, make_cuda_device says so.
#include <vector>

#include "cuda/device.h"
#include "runtime/error.h"
#include "scheduler/device.h"

#ifdef STRATA_HAVE_CUDA
#include "cuda/kernels.h"
#endif

namespace strata::scheduler {

#ifdef STRATA_HAVE_CUDA
namespace {

class CudaDevice final : public Device {
  public:
    CudaDevice(uint64_t budget, std::string name) : budget_(budget), name_(std::move(name)) {}
    ~CudaDevice() override {
        for (const Buffer& b : buffers_) cuda::device_free(b.data);
    }
    CudaDevice(const CudaDevice&) = delete;
    CudaDevice& operator=(const CudaDevice&) = delete;

    std::string_view name() const override { return name_; }
    uint64_t budget_bytes() const override { return budget_; }
    uint64_t used_bytes() const override { return used_; }
    uint64_t uploaded_bytes() const override { return uploaded_; }
    uint64_t products() const override { return products_; }
    bool supports(quant::Type type) const override {
        return cuda::kernel_for(static_cast<uint32_t>(type));
    }

    int64_t upload(std::string_view what, const uint8_t* data, size_t bytes) override {
        if (bytes > budget_ - used_)
            fail("device '{}': uploading {} ({} bytes) would pass its budget of {} bytes ({} used)",
                 name(), what, bytes, budget_, used_);
        std::string why;
        void* p = cuda::device_alloc(bytes, &why);
        if (p == nullptr)
            fail("device '{}': allocating {} bytes for {}: {}", name(), bytes, what, why);
        if (!cuda::upload(p, data, bytes, &why)) {
            cuda::device_free(p);
            fail("device '{}': uploading {}: {}", name(), what, why);
        }
        buffers_.push_back({p, bytes});
        used_ += bytes;
        uploaded_ += bytes;
        return static_cast<int64_t>(buffers_.size()) - 1;
    }

    void matmul(const DeviceMatrix& w, const simd::Activations& a, float* y, int64_t y_stride,
                simd::Path) override {
        const Buffer& b = buffer(w.buffer);
        const size_t row = quant::row_bytes(w.type, w.n_in);
        const bool fits =
            w.n_out > 0 && w.row_stride >= row && w.offset <= b.bytes &&
            b.bytes - w.offset >= row &&
            (b.bytes - w.offset - row) / w.row_stride >= static_cast<size_t>(w.n_out - 1);
        if (!fits)
            fail("device '{}': buffer {} holds {} bytes, not {} rows of {} bytes from byte {}",
                 name(), w.buffer, b.bytes, w.n_out, row, w.offset);
        if (a.type() != quant::traits(w.type).partner || a.n_in() != w.n_in)
            fail("device '{}': activations of {} elements in the wrong format for buffer {}",
                 name(), a.n_in(), w.buffer);
        if (w.layout != simd::Layout::Rows)
            fail("device '{}': buffer {} holds interleaved rows, which its kernels do not read",
                 name(), w.buffer);
        if (a.n_rows() == 0) return;
        std::string why;
        if (!cuda::matmul(static_cast<uint32_t>(w.type),
                          static_cast<const uint8_t*>(b.data) + w.offset, w.row_stride, w.n_in,
                          w.n_out, a.row(0), a.row_stride(), a.n_rows(), y, y_stride, &why))
            fail("device '{}': a {} product of {} x {}: {}", name(), quant::type_name(w.type),
                 w.n_out, w.n_in, why);
        ++products_;
    }

    void read(int64_t id, size_t offset, size_t bytes, uint8_t* dst) const override {
        const Buffer& b = buffer(id);
        if (offset > b.bytes || bytes > b.bytes - offset)
            fail("device '{}': buffer {} holds {} bytes, not {} from byte {}", name(), id, b.bytes,
                 bytes, offset);
        std::string why;
        if (!cuda::download(dst, static_cast<const uint8_t*>(b.data) + offset, bytes, &why))
            fail("device '{}': reading buffer {}: {}", name(), id, why);
    }

  private:
    struct Buffer {
        void* data = nullptr;
        size_t bytes = 0;
    };
    const Buffer& buffer(int64_t id) const {
        if (id < 0 || id >= static_cast<int64_t>(buffers_.size()))
            fail("device '{}': no buffer {}", name(), id);
        return buffers_[static_cast<size_t>(id)];
    }

    uint64_t budget_ = 0, used_ = 0, uploaded_ = 0, products_ = 0;
    std::string name_;
    std::vector<Buffer> buffers_;  // (buffers) device allocations
};

}  // namespace

std::unique_ptr<Device> make_cuda_device(uint64_t budget_bytes) {
    std::string why;
    const std::vector<cuda::DeviceInfo> gpus = cuda::devices(&why);
    if (gpus.empty()) fail("--gpu-device cuda: {}", why.empty() ? "no CUDA devices" : why);
    if (budget_bytes > gpus.front().free_bytes)
        fail("--gpu-budget {} bytes is more than {} has free ({} bytes)", budget_bytes,
             gpus.front().name, gpus.front().free_bytes);
    return std::make_unique<CudaDevice>(budget_bytes, "cuda:" + gpus.front().name);
}

#else

std::unique_ptr<Device> make_cuda_device(uint64_t) {
    fail(
        "--gpu-device cuda: this build has no CUDA tier (configure with the CUDA toolkit "
        "installed); --gpu-device host runs the same split through host memory");
}

#endif

}  // namespace strata::scheduler
