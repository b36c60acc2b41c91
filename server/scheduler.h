// Continuous batching for `strata serve`: one thread owns the model's Engine and a Session per
// slot, and runs every request's generation.
//
// HTTP handlers submit a Job (request, prompt tokens) and read its text as it comes. The
// scheduler loop, one step at a time:
//   1. drops jobs whose client went away (Job::cancel) and frees their slots;
//   2. admits queued jobs into free slots, each into the free slot whose cache shares the longest
//      prefix with its prompt (a conversation's next turn reuses its earlier turns);
//   3. prefills admitted prompts in chunks of the engine's n_batch tokens, at most about n_batch
//      prompt tokens per step, so that a long prompt does not stall the running decodes;
//   4. decodes one token of every live sequence in one pass (Session::decode_batch), samples
//      each with its request's own Sampler, and hands each job its new text; finishes jobs that
//      ended (stop, length, context full).
// A prompt's chunks are cut at the same places however busy the server is, and the rows of a
// batch do not change each other's logits (Forward::run_batch), so a request's text at
// temperature 0 does not depend on what else is running.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/chat/template.h"
#include "runtime/chat/turn.h"
#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "runtime/tokenizer/tokenizer.h"
#include "server/api.h"
#include "server/metrics.h"

namespace strata::server {

using Clock = std::chrono::steady_clock;

// What a finished generation produced.
struct Generated {
    std::string reasoning, content;
    chat::TurnEnd end = chat::TurnEnd::kNone;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    bool cancelled = false;
    std::string error;  // non-empty: the generation failed (the server's fault: HTTP 500)
};

// One request on its way through the scheduler; shared by its handler and the scheduler.
class Job {
  public:
    Job(GenRequest request, std::vector<int32_t> prompt, Clock::time_point t0)
        : request_(std::move(request)), prompt_(std::move(prompt)), t0_(t0) {}

    const GenRequest& request() const { return request_; }
    const std::vector<int32_t>& prompt() const { return prompt_; }
    Clock::time_point t0() const { return t0_; }

    // Waits up to `timeout` for text (streaming requests only; the others get theirs from
    // result()); appends what came to `out`. Returns true once the generation is over and all
    // its text has been handed out (result() is then final).
    bool wait(std::vector<chat::Span>& out, std::chrono::milliseconds timeout);
    // The client is gone: the scheduler stops the generation at its next step.
    void cancel() { cancelled_.store(true); }
    bool cancelled() const { return cancelled_.load(); }
    const Generated& result() const { return result_; }

  private:
    friend class Scheduler;
    // Scheduler side: new text, and the end.
    void push(const std::vector<chat::Span>& spans);
    void finish(Generated g);

    const GenRequest request_;
    const std::vector<int32_t> prompt_;
    const Clock::time_point t0_;
    std::atomic<bool> cancelled_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<chat::Span> pending_;  // text not yet taken by wait()
    bool done_ = false;
    Generated result_;  // written under mutex_ before done_ is set
};

// What the scheduler needs of the server: the model's tokenizer and chat template (which outlive
// it), the limits and the metrics.
struct SchedulerConfig {
    const Model* model = nullptr;
    const tokenizer::Tokenizer* tokenizer = nullptr;
    const chat::ChatTemplate* chat_template = nullptr;
    SessionOptions session;
    int n_slots = 1;  // sequences decoded together (--parallel)
    Limits limits;
    Metrics* metrics = nullptr;
};

class Scheduler {
  public:
    // Builds the engine and the slots' sessions (throws strata::Error as Engine does) and starts
    // the scheduler thread.
    explicit Scheduler(const SchedulerConfig& config);
    // Finishes what is queued and live, then stops the thread (as stop()).
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    int64_t n_ctx() const { return engine_->n_ctx(); }

    // Queues a job; false (nothing queued) when limits.max_queued jobs already wait beyond the
    // free slots.
    bool submit(std::shared_ptr<Job> job);
    // Lets the queued and live jobs finish, then ends the scheduler thread; no submit after it.
    void stop();

  private:
    struct Slot {
        std::unique_ptr<Session> session;
        std::shared_ptr<Job> job;  // null: free
        uint64_t admitted = 0;     // admission order: prompts are prefilled first come first
        std::optional<Sampler> sampler;
        std::optional<chat::TurnStream> turn;
        int64_t prefilled = 0;   // prompt tokens the cache holds
        int64_t max_tokens = 0;  // the request's, at most the room left after the prompt
        int64_t room = 0;        // context positions left after the prompt
        int32_t next = -1;       // sampled and not yet decoded; -1: none
        bool sampled_any = false;
        Generated g;
    };

    void loop();
    // Takes jobs off the queue into free slots; drops cancelled queued jobs. Under mutex_.
    void admit(std::vector<Slot*>& started);
    // Sets up a slot's sampler and turn, keeps the longest cached prefix of its prompt.
    void start(Slot& slot);
    // Up to about n_batch prompt tokens of the slots still prefilling, oldest admission first.
    void prefill_step();
    // One token of every slot holding a sampled token, in one pass.
    void decode_step();
    // Samples the slot's next token from `logits`, hands out its text, finishes it when done.
    void sample(Slot& slot, std::span<const float> logits);
    // Ends the slot's job (cancelled, failed or done) and frees the slot.
    void finish(Slot& slot);
    void fail(Slot& slot, const std::string& message);

    SchedulerConfig config_;
    std::shared_ptr<Engine> engine_;
    std::vector<Slot> slots_;        // (n_slots)
    std::vector<int32_t> eog_;       // end-of-generation tokens, masked under ignore_eos
    std::vector<float> masked_;      // (n_vocab) logits without them
    std::vector<float> logits_;      // (rows, n_vocab) of a decode step
    std::vector<chat::Span> spans_;  // text of one token
    uint64_t n_admitted_ = 0;
    std::atomic<int64_t> n_live_{0};  // slots holding a job; written by the scheduler thread

    std::mutex mutex_;  // guards queue_ and stopping_
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Job>> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace strata::server
