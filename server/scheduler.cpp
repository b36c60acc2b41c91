// The scheduler thread of `strata serve`: admission, chunked prefill, batched decode, sampling.
#include "server/scheduler.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <random>

#include "runtime/error.h"

namespace strata::server {

bool Job::wait(std::vector<chat::Span>& out, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return done_ || !pending_.empty(); });
    for (chat::Span& s : pending_) out.push_back(std::move(s));
    pending_.clear();
    return done_;
}

void Job::push(const std::vector<chat::Span>& spans) {
    // A whole answer is taken from result(): its handler is woken at the end only, not per token.
    if (spans.empty() || !request_.stream) return;
    {
        std::lock_guard lock(mutex_);
        pending_.insert(pending_.end(), spans.begin(), spans.end());
    }
    cv_.notify_all();
}

void Job::finish(Generated g) {
    {
        std::lock_guard lock(mutex_);
        result_ = std::move(g);
        done_ = true;
    }
    cv_.notify_all();
}

namespace {

int64_t micros_since(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    const size_t n = std::min(a.size(), b.size());
    size_t k = 0;
    while (k < n && a[k] == b[k]) ++k;
    return k;
}

}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config),
      engine_(
          std::make_shared<Engine>(*config.model, config.session, std::max(config.n_slots, 1))) {
    slots_.resize(static_cast<size_t>(std::max(config.n_slots, 1)));
    for (Slot& s : slots_) s.session = std::make_unique<Session>(engine_);
    for (int32_t id = 0; id < config_.tokenizer->n_vocab(); ++id)
        if (config_.tokenizer->is_eog(id)) eog_.push_back(id);
    // The thread takes no signals: they stay with the thread the server waits for them on
    // (a SIGTERM delivered here would end the process instead of draining it).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] { loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Scheduler::~Scheduler() {
    stop();
}

bool Scheduler::submit(std::shared_ptr<Job> job) {
    {
        std::lock_guard lock(mutex_);
        const auto free = static_cast<int64_t>(slots_.size()) - n_live_.load();
        if (static_cast<int64_t>(queue_.size()) - free >= config_.limits.max_queued) return false;
        queue_.push_back(std::move(job));
        ++config_.metrics->queued;
    }
    cv_.notify_one();
    return true;
}

void Scheduler::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void Scheduler::loop() {
    std::vector<Slot*> started;
    for (;;) {
        started.clear();
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || n_live_.load() > 0; });
            if (stopping_ && queue_.empty() && n_live_.load() == 0) return;
            admit(started);
        }
        for (Slot* s : started) start(*s);
        for (Slot& s : slots_) {
            if (s.job && s.job->cancelled()) {
                s.g.cancelled = true;
                finish(s);
            }
        }
        prefill_step();
        decode_step();
    }
}

void Scheduler::admit(std::vector<Slot*>& started) {
    for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->cancelled()) {
            // Gone before it was admitted: counted as a cancelled generation of no tokens.
            Generated g;
            g.cancelled = true;
            g.prompt_tokens = static_cast<int64_t>((*it)->prompt().size());
            --config_.metrics->queued;
            ++config_.metrics->completions;
            ++config_.metrics->cancelled;
            (*it)->finish(std::move(g));
            it = queue_.erase(it);
            continue;
        }
        Slot* best = nullptr;
        size_t best_len = 0;
        for (Slot& s : slots_) {
            if (s.job) continue;
            const size_t k = common_prefix(s.session->tokens(), (*it)->prompt());
            if (best == nullptr || k > best_len) {
                best = &s;
                best_len = k;
            }
        }
        if (best == nullptr) break;  // no free slot: the rest wait
        best->job = std::move(*it);
        best->admitted = n_admitted_++;
        ++n_live_;
        --config_.metrics->queued;
        ++config_.metrics->active;
        started.push_back(best);
        it = queue_.erase(it);
    }
}

void Scheduler::start(Slot& slot) {
    const GenRequest& r = slot.job->request();
    const std::vector<int32_t>& prompt = slot.job->prompt();
    SamplerParams p = default_sampling(*config_.model);  // R1: temperature 0.6, top-p 0.95
    if (r.temperature) p.temperature = *r.temperature;
    if (r.top_p) p.top_p = *r.top_p;
    if (r.min_p) p.min_p = *r.min_p;
    if (r.top_k) p.top_k = *r.top_k;
    if (r.repeat_penalty) p.repeat_penalty = *r.repeat_penalty;
    p.seed = r.seed ? *r.seed : std::random_device{}();
    slot.g = Generated{};
    slot.g.prompt_tokens = static_cast<int64_t>(prompt.size());
    slot.next = -1;
    slot.sampled_any = false;
    try {
        slot.sampler.emplace(p);
        slot.sampler->accept_context(prompt);
        slot.turn.emplace(
            *config_.tokenizer,
            chat::TurnOptions{.in_reasoning = r.chat && config_.chat_template->opens_reasoning(),
                              .stops = r.stop});
        // Keep what the cache shares with the prompt, but evaluate at least its last token (its
        // logits are not kept), as Session::prefill does.
        const size_t keep =
            std::min(common_prefix(slot.session->tokens(), prompt), prompt.size() - 1);
        slot.session->truncate(static_cast<int64_t>(keep));
        slot.prefilled = static_cast<int64_t>(keep);
        config_.metrics->prompt_tokens += slot.g.prompt_tokens;
        slot.room = slot.session->n_ctx() - static_cast<int64_t>(prompt.size());
        slot.max_tokens = std::min(r.max_tokens.value_or(config_.limits.max_tokens), slot.room);
    } catch (const std::exception& e) {
        fail(slot, e.what());
    }
}

void Scheduler::prefill_step() {
    std::vector<Slot*> waiting;
    for (Slot& s : slots_)
        if (s.job && s.prefilled < static_cast<int64_t>(s.job->prompt().size()))
            waiting.push_back(&s);
    std::sort(waiting.begin(), waiting.end(),
              [](const Slot* a, const Slot* b) { return a->admitted < b->admitted; });
    // Whole chunks of n_batch tokens (the last one shorter) until about n_batch tokens were
    // evaluated this step: the chunks fall where they would fall on an idle server, so a prompt's
    // logits do not depend on how busy the server is.
    const int64_t n_batch = engine_->n_batch();
    int64_t budget = n_batch;
    for (Slot* s : waiting) {
        if (budget <= 0) break;
        const std::vector<int32_t>& prompt = s->job->prompt();
        const int64_t n = std::min(n_batch, static_cast<int64_t>(prompt.size()) - s->prefilled);
        try {
            const std::span<const float> logits = s->session->decode(std::span(prompt).subspan(
                static_cast<size_t>(s->prefilled), static_cast<size_t>(n)));
            s->prefilled += n;
            budget -= n;
            if (s->prefilled == static_cast<int64_t>(prompt.size())) sample(*s, logits);
        } catch (const std::exception& e) {
            fail(*s, e.what());
        }
    }
}

void Scheduler::decode_step() {
    std::vector<Slot*> rows;
    std::vector<Session*> sessions;
    std::vector<int32_t> tokens;
    for (Slot& s : slots_) {
        if (!s.job || s.next < 0) continue;
        rows.push_back(&s);
        sessions.push_back(s.session.get());
        tokens.push_back(s.next);
    }
    if (rows.empty()) return;
    try {
        Session::decode_batch(sessions, tokens, logits_);
    } catch (const std::exception& e) {
        for (Slot* s : rows) fail(*s, e.what());
        return;
    }
    config_.metrics->count_batch(static_cast<int64_t>(rows.size()));
    const auto vocab = static_cast<size_t>(engine_->model().hparams().n_vocab);
    for (size_t i = 0; i < rows.size(); ++i) {
        rows[i]->next = -1;
        sample(*rows[i], std::span<const float>(logits_.data() + i * vocab, vocab));
    }
}

void Scheduler::sample(Slot& slot, std::span<const float> logits) {
    Generated& g = slot.g;
    chat::TurnStream& turn = *slot.turn;
    auto hand_out = [&] {
        for (const chat::Span& s : spans_)
            (s.channel == chat::Channel::kReasoning ? g.reasoning : g.content) += s.text;
        slot.job->push(spans_);
    };
    spans_.clear();
    if (turn.n_tokens() >= slot.max_tokens) {
        turn.finish(
            slot.max_tokens == slot.room ? chat::TurnEnd::kContextFull : chat::TurnEnd::kLength,
            spans_);
        hand_out();
        return finish(slot);
    }
    if (slot.job->request().ignore_eos) {
        masked_.assign(logits.begin(), logits.end());
        for (const int32_t e : eog_) masked_[static_cast<size_t>(e)] = -INFINITY;
        logits = masked_;
    }
    const int32_t id = slot.sampler->sample(logits);
    slot.sampler->accept(id);
    ++config_.metrics->generated_tokens;
    if (!slot.sampled_any) {
        slot.sampled_any = true;
        config_.metrics->ttft_us_sum += micros_since(slot.job->t0());
    }
    const bool ended = turn.push(id, spans_);
    hand_out();
    if (ended) return finish(slot);
    if (slot.session->n_past() >= slot.session->n_ctx()) {
        spans_.clear();
        turn.finish(chat::TurnEnd::kContextFull, spans_);
        hand_out();
        return finish(slot);
    }
    slot.next = id;
}

void Scheduler::fail(Slot& slot, const std::string& message) {
    slot.g.error = message.empty() ? "generation failed" : message;
    finish(slot);
}

void Scheduler::finish(Slot& slot) {
    Generated& g = slot.g;
    if (slot.turn) {
        g.end = slot.turn->end();
        g.completion_tokens = slot.turn->n_tokens();
    }
    ++config_.metrics->completions;
    if (g.cancelled) ++config_.metrics->cancelled;
    config_.metrics->latency_us_sum += micros_since(slot.job->t0());
    slot.job->finish(std::move(g));
    slot.job.reset();
    slot.sampler.reset();
    slot.turn.reset();
    slot.next = -1;
    --config_.metrics->active;
    --n_live_;
}

}  // namespace strata::server
