// The host-memory device and the upload of a placement's GPU tier: budgets kept, every GPU
// tensor and slab uploaded once, and products on the device's copies equal to the CPU's on the
// mapped file, bit for bit, for every golden model at three GPU budgets.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "runtime/device_weights.h"
#include "runtime/error.h"
#include "runtime/plan_model.h"
#include "scheduler/device.h"
#include "scheduler/plan.h"
#include "simd/matmul.h"
#include "test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

// Two activation rows of n_in floats from a fixed seed.
std::vector<float> activations(int64_t n_in) {
    std::mt19937 rng(7);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(2 * n_in));
    for (float& v : x) v = d(rng);
    return x;
}

// The device's product on its copy against the CPU's on the file's mapping, bitwise.
void expect_same_product(scheduler::Device& device, int64_t buffer, const simd::Matrix& w,
                         const std::string& what) {
    const std::vector<float> x = activations(w.n_in);
    std::vector<float> want(static_cast<size_t>(2 * w.n_out)), got(want.size());
    simd::Activations a;
    a.quantize(quant::traits(w.type).partner, x.data(), w.n_in, w.n_in, 2);
    simd::matmul(w, a, want.data(), w.n_out);
    device.matmul({buffer, 0, w.type, w.n_in, w.n_out, w.row_stride}, a, got.data(), w.n_out,
                  simd::Path::Gemm);
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0) << what;
}

TEST(HostDevice, GoldenModelsUploadTheirGpuTierAndMultiplyBitExactly) {
    const fs::path dir = test::golden_dir() / "models";
    if (!fs::exists(dir)) GTEST_SKIP() << "no golden models at " << dir;
    scheduler::Figures f = scheduler::published_figures();
    f.pcie_latency_us = 0;  // golden models are tiny: without this nothing would pay to move
    int models = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".gguf") continue;
        SCOPED_TRACE(entry.path().filename().string());
        const Model model = Model::load(gguf::File::open(entry.path().string()));
        const scheduler::ModelInfo info = model_info(model);
        uint64_t weights = 0;
        for (const auto& t : info.tensors) weights += t.bytes;
        int64_t with_gpu = 0, products = 0;
        for (const double share : {0.1, 0.4, 1.5}) {
            scheduler::Budgets b;
            b.gpu_bytes = static_cast<uint64_t>(share * static_cast<double>(weights));
            b.ram_bytes = 4 * weights + (1ull << 30);
            b.gpu_reserve_bytes = 0;
            b.ctx = 64;
            const scheduler::Placement p = scheduler::plan(info, f, b, {});
            auto device = scheduler::make_host_device(b.gpu_bytes);
            const DeviceWeights w = upload_placement(*device, model, info, p);
            EXPECT_LE(device->used_bytes(), b.gpu_bytes);
            EXPECT_EQ(device->uploaded_bytes(),
                      p.bytes[static_cast<size_t>(scheduler::Tier::Gpu)] - p.kv_gpu_bytes);
            EXPECT_EQ(w.bytes, device->uploaded_bytes());
            with_gpu += w.bytes > 0;
            for (const auto& [name, buffer] : w.tensors) {
                const gguf::Tensor& t = model.file().tensor(name);
                if (t.n_dims != 2 || !simd::can_multiply(t.type)) continue;
                ++products;
                expect_same_product(*device, buffer,
                                    {t.data, t.type, t.ne[0], t.ne[1], t.row_bytes()}, name);
            }
            for (const auto& [key, buffer] : w.slabs) {
                const gguf::Tensor& t = model.file().tensor(key.first);
                ++products;
                const simd::Matrix stack{t.data, t.type, t.ne[0], t.ne[1] * t.ne[2], t.row_bytes()};
                expect_same_product(*device, buffer, stack.rows(key.second * t.ne[1], t.ne[1]),
                                    fmt::format("{} expert {}", key.first, key.second));
            }
        }
        EXPECT_GT(with_gpu, 0) << "no budget put anything on the GPU";
        EXPECT_GT(products, 0) << "no product compared";
        ++models;
    }
    EXPECT_GT(models, 0);
}

TEST(HostDevice, UploadPastTheBudgetNamesTheTensorAndAllocatesNothing) {
    auto device = scheduler::make_host_device(100);
    const std::vector<uint8_t> data(64, 1);
    EXPECT_EQ(device->upload("a", data.data(), 64), 0);
    try {
        device->upload("blk.3.attn_q.weight", data.data(), 64);
        ADD_FAILURE() << "uploaded past the budget";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("blk.3.attn_q.weight"), std::string::npos) << e.what();
    }
    EXPECT_EQ(device->used_bytes(), 64u);
    simd::Activations a;
    const std::vector<float> x(16, 1.0f);
    a.quantize(quant::Type::F32, x.data(), 16, 16, 1);
    std::vector<float> y(64);
    const auto product = [&](scheduler::DeviceMatrix w) {
        device->matmul(w, a, y.data(), 4, simd::Path::Gemm);
    };
    EXPECT_THROW(product({5, 0, quant::Type::F32, 16, 1, 64}), Error);   // no such buffer
    EXPECT_THROW(product({0, 0, quant::Type::F32, 16, 2, 64}), Error);   // 128 bytes of 64
    EXPECT_THROW(product({0, 8, quant::Type::F32, 16, 1, 64}), Error);   // past the end
    EXPECT_THROW(product({0, 0, quant::Type::F32, 8, 1, 32}), Error);    // wrong activations
    EXPECT_THROW(product({0, 65, quant::Type::F32, 16, 1, 64}), Error);  // offset past the end
    product({0, 0, quant::Type::F32, 16, 1, 64});
    uint8_t row[16];
    EXPECT_THROW(device->read(0, 60, 8, row), Error);
    device->read(0, 48, 16, row);
    EXPECT_EQ(row[15], 1);
}

}  // namespace
}  // namespace strata
