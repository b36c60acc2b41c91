// Engine: the forward pass, the expert cache under a budget, and loading the weights.
#include "runtime/engine.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "runtime/arch/forward.h"
#include "runtime/error.h"
#include "runtime/expert_table.h"
#include "runtime/interleave.h"
#include "runtime/progress.h"
#include "scheduler/hardware.h"

namespace strata {
namespace {

int64_t default_ctx(const HParams& hp) {
    constexpr int64_t kDefault = 4096;
    return hp.n_ctx_train > 0 ? std::min(hp.n_ctx_train, kDefault) : kDefault;
}

// Brings the weights a forward pass reads from the mapping into memory before the first pass,
// with a progress line ("loading", on a terminal), so that a large model's first token does not
// hide minutes of page faults: under a budget the part outside the routed experts (those come
// through the expert cache), otherwise the whole file when it fits in the memory available. A
// model that does not fit and has no budget is left to fault in as it is read. Tensors on a GPU
// tier are not read from the mapping again.
void load_weights(const Model& model, bool routed_from_cache, const GpuTier* gpu) {
    struct Range {
        const uint8_t* data;
        uint64_t bytes;
    };
    std::vector<Range> ranges;
    uint64_t total = 0;
    for (const gguf::Tensor& t : model.file().tensors()) {
        if (routed_from_cache && role_of(t.name) == Role::RoutedExperts) continue;
        if (gpu && gpu->weights().tensors.count(std::string(t.name)) > 0) continue;
        if (gpu && t.n_dims == 3) {
            // A stack of expert slabs: those on the GPU are left out.
            const size_t slab = t.nbytes / static_cast<size_t>(t.ne[2]);
            for (int64_t e = 0; e < t.ne[2]; ++e) {
                if (gpu->weights().slabs.count({std::string(t.name), e}) > 0) continue;
                ranges.push_back({t.data + static_cast<size_t>(e) * slab, slab});
                total += slab;
            }
            continue;
        }
        ranges.push_back({t.data, t.nbytes});
        total += t.nbytes;
    }
    if (!routed_from_cache && total > scheduler::meminfo("MemAvailable")) return;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    constexpr uint64_t kStep = uint64_t{64} << 20;
    Progress progress("loading", total, /*bytes=*/true);
    uint64_t done = 0;
    for (const Range& r : ranges) {
        for (uint64_t off = 0; off < r.bytes; off += kStep) {
            const uint64_t n = std::min(kStep, r.bytes - off);
            const auto first = reinterpret_cast<uintptr_t>(r.data + off);
            const uintptr_t begin = first & ~(page - 1), end = first + n;
#ifdef MADV_POPULATE_READ
            if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ) != 0)
#endif
            {
                // Kernels before 5.14: one read per page.
                uint8_t sink = 0;
                for (uintptr_t a = std::max(begin, first); a < end; a = (a & ~(page - 1)) + page)
                    sink ^= *reinterpret_cast<const volatile uint8_t*>(a);
                static_cast<void>(sink);
            }
            done += n;
            progress.update(done);
        }
    }
    progress.finish();
}

}  // namespace

Engine::Engine(const Model& model, const SessionOptions& options, int64_t n_seqs)
    : model_(&model), n_batch_(options.n_batch), n_seqs_(n_seqs), n_threads_(options.n_threads) {
    if (options.n_ctx < 0) fail("--ctx is {}, expected a positive number of tokens", options.n_ctx);
    if (n_batch_ <= 0) fail("--batch is {}, expected a positive number of tokens", n_batch_);
    if (options.n_threads < 0)
        fail("--threads is {}, expected a positive number", options.n_threads);
    if (n_seqs <= 0) fail("{} sequences, expected at least one", n_seqs);
    n_ctx_ = options.n_ctx > 0 ? options.n_ctx : default_ctx(model.hparams());
    // The GPU tier is planned first: the tensors and slabs it takes keep the file's pages.
    GpuOptions gpu = options.gpu;
    gpu.ram_budget = options.ram_budget;
    std::optional<scheduler::Placement> placement;
    if (gpu.budget > 0) placement = GpuTier::plan(model, gpu, n_ctx_ * n_seqs);
    // Before the forward pass takes its views of the matrices: they carry the layout.
    if (options.repack)
        interleave_weights(model, options.ram_budget > 0 && expert_table(model).n_layer > 0,
                           placement ? GpuTier::kept_rows(model, *placement) : KeepRows{});
    forward_ = make_forward(model, options.mla_legacy);
    layout_ = forward_->kv_layout();
    workspace_ = forward_->workspace_bytes(std::max(n_batch_, n_seqs_), n_ctx_);
    const uint64_t one = layout_.bytes(n_ctx_);
    if (one != 0 && static_cast<uint64_t>(n_seqs) > std::numeric_limits<uint64_t>::max() / one)
        fail("--ctx {} for {} sequences: the KV caches' size overflows", n_ctx_, n_seqs);
    if (options.ram_budget > 0) attach_budget(options, one * static_cast<uint64_t>(n_seqs));
    if (placement) gpu_ = std::make_unique<GpuTier>(model, *forward_, gpu, std::move(*placement));
    load_weights(model, experts_ != nullptr, gpu_.get());
}

Engine::~Engine() = default;

void Engine::attach_budget(const SessionOptions& options, uint64_t kv_bytes) {
    offload::StoreTable table = expert_table(*model_);
    if (table.n_layer == 0) {
        // Nothing to stream: the whole file and the KV caches must fit.
        const uint64_t need = model_->file().file_bytes() + kv_bytes;
        if (need > options.ram_budget) {
            fail(
                "--ram-budget {:.2f} GiB is too small: weights {:.2f} GiB + KV cache {:.2f} GiB "
                "(a model without routed experts is held whole); minimum budget {:.2f} GiB",
                static_cast<double>(options.ram_budget) / (1ull << 30),
                static_cast<double>(model_->file().file_bytes()) / (1ull << 30),
                static_cast<double>(kv_bytes) / (1ull << 30),
                static_cast<double>(need) / (1ull << 30));
        }
        return;
    }
    offload::CacheOptions co;
    co.budget_bytes = options.ram_budget;
    co.kv_bytes = kv_bytes;
    co.workspace_bytes = workspace_;
    co.policy = options.cache_policy;
    co.hot_profile = options.hot_profile;
    co.trace_path = options.trace_path;
    co.reader = options.reader;
    co.prefetch_reads = options.prefetch_reads;
    experts_ = std::make_unique<offload::ExpertCache>(offload::ExpertStore(std::move(table)), co);
    forward_->use_expert_cache(experts_.get(), options.repack);
}

const std::vector<std::vector<uint64_t>>& Engine::routing_counts() const {
    return forward_->routing_counts();
}

}  // namespace strata
