#include "runtime/gpu_tier.h"

#include <algorithm>
#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include "runtime/arch/forward.h"
#include "runtime/error.h"
#include "runtime/plan_model.h"
#include "scheduler/cost.h"
#include "scheduler/hardware.h"
#include "scheduler/routing_profile.h"

namespace strata {
namespace {

std::unique_ptr<scheduler::Device> make_device(const std::string& name, uint64_t budget) {
    if (name == "host") return scheduler::make_host_device(budget);
    if (name.empty() || name == "cuda") return scheduler::make_cuda_device(budget);
    fail("--gpu-device '{}': expected cuda or host", name);
}

}  // namespace

scheduler::Placement GpuTier::plan(const Model& model, const GpuOptions& options, int64_t n_ctx) {
    if (options.budget == 0) fail("--gpu-budget is 0: nothing to place on a GPU");
    const scheduler::ModelInfo info = model_info(model);
    scheduler::Figures figures = scheduler::published_figures();
    const std::string cached = scheduler::default_figures_path();
    if (options.figures) {
        figures = *options.figures;
    } else if (!cached.empty() && std::filesystem::exists(cached)) {
        figures = scheduler::read_figures(cached, figures);
    }
    scheduler::Budgets b;
    b.gpu_bytes = options.budget;
    b.ram_bytes =
        options.ram_budget > 0 ? options.ram_budget : std::numeric_limits<uint64_t>::max() / 4;
    b.gpu_reserve_bytes = options.reserve;
    b.ctx = n_ctx;
    const scheduler::RoutingProfile usage =
        options.usage_path.empty() ? scheduler::RoutingProfile{}
                                   : scheduler::read_routing_profile(options.usage_path);
    return scheduler::plan(info, figures, b, usage);
}

KeepRows GpuTier::kept_rows(const Model& model, const scheduler::Placement& placement) {
    const scheduler::ModelInfo info = model_info(model);
    KeepRows keep;
    for (size_t i = 0; i < info.tensors.size() && i < placement.tensors.size(); ++i) {
        const scheduler::TensorPlacement& tp = placement.tensors[i];
        if (tp.slabs.empty()) {
            if (tp.tier == scheduler::Tier::Gpu) keep.tensors.push_back(info.tensors[i].name);
            continue;
        }
        std::vector<bool> on_gpu(tp.slabs.size());
        for (size_t e = 0; e < tp.slabs.size(); ++e)
            on_gpu[e] = tp.slabs[e] == scheduler::Tier::Gpu;
        if (std::find(on_gpu.begin(), on_gpu.end(), true) != on_gpu.end())
            keep.slabs.emplace(info.tensors[i].name, std::move(on_gpu));
    }
    return keep;
}

GpuTier::GpuTier(const Model& model, Forward& forward, const GpuOptions& options,
                 scheduler::Placement placement)
    : forward_(&forward), placement_(std::move(placement)) {
    if (options.budget == 0) fail("--gpu-budget is 0: nothing to place on a GPU");
    device_ = make_device(options.device, options.budget);
    const scheduler::ModelInfo info = model_info(model);
    if (placement_.tensors.size() != info.tensors.size())
        fail("--gpu-budget: the placement has {} tensors, the model {}", placement_.tensors.size(),
             info.tensors.size());
    // The host device's copies are anonymous memory: more than the machine has free would end in
    // the OOM killer, not in an error.
    const uint64_t gpu_weights =
        placement_.bytes[static_cast<size_t>(scheduler::Tier::Gpu)] - placement_.kv_gpu_bytes;
    const uint64_t available = scheduler::meminfo("MemAvailable");
    if (device_->name() == "host" && available > 0 && gpu_weights > available)
        fail(
            "--gpu-device host keeps its copies in RAM: the plan puts {:.2f} GiB there and "
            "{:.2f} GiB is available; give a smaller --gpu-budget",
            static_cast<double>(gpu_weights) / (1ull << 30),
            static_cast<double>(available) / (1ull << 30));
    for (size_t i = 0; i < info.tensors.size(); ++i) {
        const scheduler::TensorPlacement& tp = placement_.tensors[i];
        const bool on_gpu =
            tp.tier == scheduler::Tier::Gpu ||
            std::find(tp.slabs.begin(), tp.slabs.end(), scheduler::Tier::Gpu) != tp.slabs.end();
        const gguf::Tensor& t = model.file().tensor(info.tensors[i].name);
        // Vectors (norms, biases) are read by the host's element-wise operations, not multiplied.
        if (on_gpu && t.n_dims >= 2 && !device_->supports(t.type))
            fail("--gpu-budget: {} is {}, which device '{}' cannot multiply", t.name,
                 quant::type_name(t.type), device_->name());
    }
    weights_ = upload_placement(*device_, model, info, placement_);
    tier_ = std::make_unique<DeviceTier>(*device_, model, weights_);
    forward.use_device(tier_.get());
}

GpuTier::~GpuTier() {
    forward_->use_device(nullptr);
}

std::string GpuTier::summary() const {
    return fmt::format(
        "gpu tier ({} device): {} tensors and {} expert slabs, {:.1f} MiB of {:.1f} MiB",
        device_->name(), weights_.tensors.size(), weights_.slabs.size(),
        static_cast<double>(weights_.bytes) / (1 << 20),
        static_cast<double>(device_->budget_bytes()) / (1 << 20));
}

}  // namespace strata
