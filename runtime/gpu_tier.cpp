#include "runtime/gpu_tier.h"

#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include "runtime/arch/forward.h"
#include "runtime/error.h"
#include "runtime/plan_model.h"
#include "scheduler/cost.h"
#include "scheduler/routing_profile.h"

namespace strata {
namespace {

std::unique_ptr<scheduler::Device> make_device(const std::string& name, uint64_t budget) {
    if (name == "host") return scheduler::make_host_device(budget);
    if (name.empty() || name == "cuda") {
        fail(
            "--gpu-budget: this build has no CUDA kernels yet, so nothing can run on a GPU; "
            "--gpu-device host runs the same split through host memory (for testing placements)");
    }
    fail("--gpu-device '{}': expected cuda or host", name);
}

}  // namespace

GpuTier::GpuTier(const Model& model, Forward& forward, const GpuOptions& options, int64_t n_ctx)
    : forward_(&forward) {
    if (options.budget == 0) fail("--gpu-budget is 0: nothing to place on a GPU");
    device_ = make_device(options.device, options.budget);
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
    placement_ = scheduler::plan(info, figures, b, usage);
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
