// Session: context bookkeeping around the forward pass.
#include "runtime/session.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/arch/forward.h"
#include "runtime/error.h"
#include "runtime/expert_table.h"
#include "runtime/progress.h"
#include "scheduler/hardware.h"
#include "simd/parallel.h"

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
// model that does not fit and has no budget is left to fault in as it is read.
void load_weights(const Model& model, bool routed_from_cache) {
    struct Range {
        const uint8_t* data;
        uint64_t bytes;
    };
    std::vector<Range> ranges;
    uint64_t total = 0;
    for (const gguf::Tensor& t : model.file().tensors()) {
        if (routed_from_cache && role_of(t.name) == Role::RoutedExperts) continue;
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

Session::Session(const Model& model, const SessionOptions& options)
    : model_(&model),
      forward_(make_forward(model, options.mla_legacy)),
      cache_(forward_->kv_layout(),
             options.n_ctx > 0 ? options.n_ctx : default_ctx(model.hparams())),
      n_batch_(options.n_batch),
      n_threads_(options.n_threads) {
    if (options.n_ctx < 0) fail("--ctx is {}, expected a positive number of tokens", options.n_ctx);
    if (n_batch_ <= 0) fail("--batch is {}, expected a positive number of tokens", n_batch_);
    if (options.n_threads < 0)
        fail("--threads is {}, expected a positive number", options.n_threads);
    last_.resize(static_cast<size_t>(n_vocab()));
    if (options.ram_budget > 0) attach_budget(options);
    if (options.gpu.budget > 0) {
        GpuOptions gpu = options.gpu;
        gpu.ram_budget = options.ram_budget;
        gpu_ = std::make_unique<GpuTier>(model, *forward_, gpu, cache_.n_ctx());
    }
    load_weights(model, experts_ != nullptr);
}

void Session::attach_budget(const SessionOptions& options) {
    offload::StoreTable table = expert_table(*model_);
    if (table.n_layer == 0) {
        // Nothing to stream: the whole file and the KV cache must fit.
        const uint64_t need = model_->file().file_bytes() + cache_.bytes();
        if (need > options.ram_budget) {
            fail(
                "--ram-budget {:.2f} GiB is too small: weights {:.2f} GiB + KV cache {:.2f} GiB "
                "(a model without routed experts is held whole); minimum budget {:.2f} GiB",
                static_cast<double>(options.ram_budget) / (1ull << 30),
                static_cast<double>(model_->file().file_bytes()) / (1ull << 30),
                static_cast<double>(cache_.bytes()) / (1ull << 30),
                static_cast<double>(need) / (1ull << 30));
        }
        return;
    }
    offload::CacheOptions co;
    co.budget_bytes = options.ram_budget;
    co.kv_bytes = cache_.bytes();
    co.policy = options.cache_policy;
    co.hot_profile = options.hot_profile;
    co.trace_path = options.trace_path;
    co.reader = options.reader;
    experts_ = std::make_unique<offload::ExpertCache>(offload::ExpertStore(std::move(table)), co);
    forward_->use_expert_cache(experts_.get());
}

Session::~Session() = default;

const std::vector<std::vector<uint64_t>>& Session::routing_counts() const {
    return forward_->routing_counts();
}

int Session::n_threads() const {
    return n_threads_ > 0 ? n_threads_ : simd::team_size();
}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::evaluate(std::span<const int32_t> tokens, bool all_logits, float* logits) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (n == 0) fail("no tokens to evaluate");
    const int64_t vocab = n_vocab();
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= vocab) {
            fail("token id {} (input position {}) is outside the vocabulary of {} tokens",
                 tokens[i], i, vocab);
        }
    }
    if (n > n_ctx() - n_past()) {
        fail("context overflow: {} tokens in the context and {} new ones exceed --ctx {}", n_past(),
             n, n_ctx());
    }
    for (int64_t done = 0; done < n; done += n_batch_) {
        const int64_t m = std::min(n_batch_, n - done);
        const bool last_batch = done + m == n;
        // Earlier batches only fill the cache unless every token's logits are wanted.
        float* out = all_logits ? logits + done * vocab : (last_batch ? logits : nullptr);
        // One thread team per forward pass (simd/parallel.h), of the size this session was
        // given: nothing process-wide changes.
        simd::run_pass(n_threads_, [&] {
            forward_->run(tokens.subspan(static_cast<size_t>(done), static_cast<size_t>(m)),
                          n_past(), cache_, all_logits, out);
        });
        tokens_.insert(tokens_.end(), tokens.begin() + done, tokens.begin() + done + m);
    }
}

std::span<const float> Session::decode(std::span<const int32_t> tokens) {
    evaluate(tokens, false, last_.data());
    return last_;
}

void Session::decode_all(std::span<const int32_t> tokens, std::vector<float>& logits) {
    logits.resize(tokens.size() * static_cast<size_t>(n_vocab()));
    evaluate(tokens, true, logits.data());
    const auto vocab = static_cast<ptrdiff_t>(n_vocab());
    std::copy(logits.end() - vocab, logits.end(), last_.begin());
}

std::span<const float> Session::prefill(std::span<const int32_t> tokens) {
    if (tokens.empty()) fail("no tokens to evaluate");
    size_t common = 0;
    while (common < tokens.size() && common < tokens_.size() && tokens[common] == tokens_[common])
        ++common;
    // The last token is evaluated again when everything matches: its logits are not kept.
    common = std::min(common, tokens.size() - 1);
    truncate(static_cast<int64_t>(common));
    reused_ = static_cast<int64_t>(common);
    return decode(tokens.subspan(common));
}

void Session::truncate(int64_t n) {
    if (n < 0 || n > n_past()) fail("cannot keep {} tokens of a context of {}", n, n_past());
    // Cache rows past n are simply overwritten by the next evaluation.
    tokens_.resize(static_cast<size_t>(n));
}

}  // namespace strata
