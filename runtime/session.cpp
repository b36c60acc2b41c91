// Session: context bookkeeping around the forward pass.
#include "runtime/session.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/arch/forward.h"
#include "runtime/engine.h"
#include "runtime/error.h"
#include "simd/parallel.h"

namespace strata {

Session::Session(const Model& model, const SessionOptions& options)
    : Session(std::make_shared<Engine>(model, options)) {}

Session::Session(std::shared_ptr<Engine> engine)
    : engine_(std::move(engine)),
      cache_(engine_->kv_layout(), engine_->n_ctx()),
      n_vocab_(engine_->model().hparams().n_vocab) {
    last_.resize(static_cast<size_t>(n_vocab_));
}

Session::~Session() = default;

const Model& Session::model() const {
    return engine_->model();
}
offload::ExpertCache* Session::expert_cache() {
    return engine_->expert_cache();
}
const offload::ExpertCache* Session::expert_cache() const {
    return engine_->expert_cache();
}
const GpuTier* Session::gpu_tier() const {
    return engine_->gpu_tier();
}
const std::vector<std::vector<uint64_t>>& Session::routing_counts() const {
    return engine_->routing_counts();
}

int Session::n_threads() const {
    const int n = engine_->n_threads_option();
    return n > 0 ? n : simd::team_size();
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
    const int64_t n_batch = engine_->n_batch();
    for (int64_t done = 0; done < n; done += n_batch) {
        const int64_t m = std::min(n_batch, n - done);
        const bool last_batch = done + m == n;
        // Earlier batches only fill the cache unless every token's logits are wanted.
        float* out = all_logits ? logits + done * vocab : (last_batch ? logits : nullptr);
        // One thread team per forward pass (simd/parallel.h), of the size this session was
        // given: nothing process-wide changes.
        simd::run_pass(engine_->n_threads_option(), [&] {
            engine_->forward().run(
                tokens.subspan(static_cast<size_t>(done), static_cast<size_t>(m)), n_past(), cache_,
                all_logits, out);
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

void Session::decode_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens,
                           std::vector<float>& logits) {
    if (sessions.size() != tokens.size())
        fail("{} sessions and {} tokens to decode, expected one token each", sessions.size(),
             tokens.size());
    logits.clear();
    if (sessions.empty()) return;
    Engine* engine = sessions[0]->engine_.get();
    for (size_t i = 0; i < sessions.size(); ++i) {
        const Session& s = *sessions[i];
        if (s.engine_.get() != engine)
            fail("row {}: sessions on different engines cannot be decoded together", i);
        for (size_t j = 0; j < i; ++j)
            if (sessions[j] == sessions[i]) fail("rows {} and {} are the same session", j, i);
        if (tokens[i] < 0 || tokens[i] >= s.n_vocab())
            fail("row {}: token id {} is outside the vocabulary of {} tokens", i, tokens[i],
                 s.n_vocab());
        if (s.n_past() >= s.n_ctx())
            fail(
                "context overflow in row {}: {} tokens in the context and 1 new one exceed --ctx "
                "{}",
                i, s.n_past(), s.n_ctx());
    }
    std::vector<BatchRow> rows(sessions.size());
    for (size_t i = 0; i < sessions.size(); ++i)
        rows[i] = {.token = tokens[i], .pos = sessions[i]->n_past(), .cache = &sessions[i]->cache_};
    logits.resize(sessions.size() * static_cast<size_t>(engine->model().hparams().n_vocab));
    simd::run_pass(engine->n_threads_option(),
                   [&] { engine->forward().run_batch(rows, logits.data()); });
    for (size_t i = 0; i < sessions.size(); ++i) sessions[i]->tokens_.push_back(tokens[i]);
}

void Session::truncate(int64_t n) {
    if (n < 0 || n > n_past()) fail("cannot keep {} tokens of a context of {}", n, n_past());
    // Cache rows past n are simply overwritten by the next evaluation.
    tokens_.resize(static_cast<size_t>(n));
}

}  // namespace strata
