#include "server/server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "runtime/chat/detect.h"
#include "runtime/chat/turn.h"
#include "runtime/error.h"
#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Counters for /metrics.
struct Metrics {
    std::atomic<int64_t> requests{0};       // every HTTP request
    std::atomic<int64_t> completions{0};    // generations finished
    std::atomic<int64_t> rejected{0};       // answered 4xx
    std::atomic<int64_t> cancelled{0};      // client went away mid-generation
    std::atomic<int64_t> prompt_tokens{0};  // evaluated or reused
    std::atomic<int64_t> generated_tokens{0};
    std::atomic<int64_t> queued{0};          // waiting for a slot now
    std::atomic<int64_t> active{0};          // generating now
    std::atomic<int64_t> latency_us_sum{0};  // request start to last token, generations
    std::atomic<int64_t> ttft_us_sum{0};     // request start to first token
};

// The Sessions; a request takes the free one sharing the longest prefix with its prompt.
class SlotPool {
  public:
    SlotPool(const Model& model, const SessionOptions& options, int n) {
        for (int i = 0; i < n; ++i) sessions_.push_back(std::make_unique<Session>(model, options));
        busy_.assign(static_cast<size_t>(n), false);
    }
    int64_t n_ctx() const { return sessions_.front()->n_ctx(); }

    // A free slot's index, or -1 when `max_queued` requests already wait.
    int acquire(std::span<const int32_t> prompt, int64_t max_queued, Metrics& metrics) {
        std::unique_lock lock(mutex_);
        if (!any_free() && waiting_ >= max_queued) return -1;
        ++waiting_;
        ++metrics.queued;
        cv_.wait(lock, [&] { return any_free(); });
        --waiting_;
        --metrics.queued;
        int best = -1;
        size_t best_len = 0;
        for (size_t i = 0; i < sessions_.size(); ++i) {
            if (busy_[i]) continue;
            const std::vector<int32_t>& held = sessions_[i]->tokens();
            const size_t n = std::min(held.size(), prompt.size());
            size_t k = 0;
            while (k < n && held[k] == prompt[k]) ++k;
            if (best < 0 || k > best_len) {
                best = static_cast<int>(i);
                best_len = k;
            }
        }
        busy_[static_cast<size_t>(best)] = true;
        return best;
    }
    void release(int i) {
        {
            std::lock_guard lock(mutex_);
            busy_[static_cast<size_t>(i)] = false;
        }
        cv_.notify_one();
    }
    Session& session(int i) { return *sessions_[static_cast<size_t>(i)]; }

  private:
    bool any_free() const { return std::find(busy_.begin(), busy_.end(), false) != busy_.end(); }

    std::vector<std::unique_ptr<Session>> sessions_;
    std::vector<bool> busy_;  // (parallel) whether a request holds the slot
    int64_t waiting_ = 0;
    std::mutex mutex_;
    std::condition_variable cv_;
};

struct Generated {
    std::string reasoning, content;
    chat::TurnEnd end = chat::TurnEnd::kNone;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    bool cancelled = false;
};

const char* finish_reason(chat::TurnEnd end) {
    return end == chat::TurnEnd::kLength || end == chat::TurnEnd::kContextFull ? "length" : "stop";
}

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

class Server {
  public:
    explicit Server(const ServeOptions& options)
        : options_(options),
          model_(load_model_file(options.model_path)),
          tokenizer_(tokenizer::Tokenizer::load(model_.file())),
          template_(chat::detect_template(model_.file(), tokenizer_).tmpl),
          pool_(model_, options.session, std::max(options.parallel, 1)),
          model_name_(std::filesystem::path(options.model_path).stem().string()) {
        limits_ = options.limits;
        for (int32_t id = 0; id < tokenizer_.n_vocab(); ++id)
            if (tokenizer_.is_eog(id)) eog_.push_back(id);
        if (limits_.max_prompt_tokens <= 0 || limits_.max_prompt_tokens >= pool_.n_ctx())
            limits_.max_prompt_tokens = pool_.n_ctx() - 1;
    }

    void run();

  private:
    static Model load_model_file(const std::string& path) {
        if (path.empty()) throw UsageError("no model given: pass -m MODEL");
        return Model::load(gguf::File::open(path));
    }
    void routes();
    void handle_generate(const httplib::Request& req, httplib::Response& res, bool chat);
    // Prefills and generates in slot `slot`; `on_spans` gets each token's text and returns false
    // when the client is gone (the generation stops and the slot is freed).
    Generated generate(int slot, const GenRequest& r, std::span<const int32_t> prompt,
                       Clock::time_point t0,
                       const std::function<bool(const std::vector<chat::Span>&)>& on_spans);
    void reply_error(httplib::Response& res, const ApiError& e) {
        ++metrics_.rejected;
        res.status = e.status;
        res.set_content(error_json(e), "application/json");
    }
    std::string metrics_text() const;

    ServeOptions options_;
    Limits limits_;
    Model model_;
    tokenizer::Tokenizer tokenizer_;
    chat::ChatTemplate template_;
    SlotPool pool_;
    std::string model_name_;
    std::vector<int32_t> eog_;  // the vocabulary's end-of-generation tokens (ignore_eos)
    Metrics metrics_;
    std::atomic<int64_t> next_id_{0};
    httplib::Server http_;
};

Generated Server::generate(int slot, const GenRequest& r, std::span<const int32_t> prompt,
                           Clock::time_point t0,
                           const std::function<bool(const std::vector<chat::Span>&)>& on_spans) {
    Session& session = pool_.session(slot);
    SamplerParams p = default_sampling(model_);  // R1: temperature 0.6, top-p 0.95
    if (r.temperature) p.temperature = *r.temperature;
    if (r.top_p) p.top_p = *r.top_p;
    if (r.min_p) p.min_p = *r.min_p;
    if (r.top_k) p.top_k = *r.top_k;
    if (r.repeat_penalty) p.repeat_penalty = *r.repeat_penalty;
    p.seed = r.seed ? *r.seed : std::random_device{}();
    Sampler sampler(p);

    Generated g;
    g.prompt_tokens = static_cast<int64_t>(prompt.size());
    std::span<const float> logits = session.prefill(prompt);
    sampler.accept_context(prompt);
    metrics_.prompt_tokens += g.prompt_tokens;

    const int64_t room = session.n_ctx() - session.n_past();
    const int64_t max_tokens = std::min(r.max_tokens.value_or(limits_.max_tokens), room);
    chat::TurnStream turn(tokenizer_,
                          {.in_reasoning = r.chat && template_.opens_reasoning(), .stops = r.stop});
    std::vector<chat::Span> spans;
    std::vector<float> masked;  // (n_vocab) logits without end-of-generation tokens
    bool first = true;
    for (;;) {
        spans.clear();
        if (turn.n_tokens() >= max_tokens) {
            turn.finish(max_tokens == room ? chat::TurnEnd::kContextFull : chat::TurnEnd::kLength,
                        spans);
            break;
        }
        if (r.ignore_eos) {
            masked.assign(logits.begin(), logits.end());
            for (const int32_t e : eog_) masked[static_cast<size_t>(e)] = -INFINITY;
            logits = masked;
        }
        const int32_t id = sampler.sample(logits);
        sampler.accept(id);
        ++metrics_.generated_tokens;
        if (first) {
            first = false;
            metrics_.ttft_us_sum +=
                std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        }
        const bool ended = turn.push(id, spans);
        for (const chat::Span& s : spans)
            (s.channel == chat::Channel::kReasoning ? g.reasoning : g.content) += s.text;
        if (!on_spans(spans)) {
            g.cancelled = true;
            break;
        }
        if (ended) {
            spans.clear();
            break;
        }
        if (session.n_past() >= session.n_ctx()) {
            spans.clear();
            turn.finish(chat::TurnEnd::kContextFull, spans);
            break;
        }
        logits = session.decode({&id, 1});
    }
    if (!g.cancelled && !spans.empty()) {
        for (const chat::Span& s : spans)
            (s.channel == chat::Channel::kReasoning ? g.reasoning : g.content) += s.text;
        g.cancelled = !on_spans(spans);
    }
    g.end = turn.end();
    g.completion_tokens = turn.n_tokens();
    return g;
}

void Server::handle_generate(const httplib::Request& req, httplib::Response& res, bool chat) {
    const auto t0 = Clock::now();
    GenRequest r;
    try {
        r = parse_request(req.body, chat, limits_);
    } catch (const ApiError& e) {
        return reply_error(res, e);
    }
    std::string text;
    if (chat) {
        std::vector<chat::Message> msgs = r.messages;
        if (template_.prefers_system_in_user_turn() && !r.system_as_is)
            msgs = chat::fold_system_into_user(msgs);
        text = template_.render(msgs, true);
    } else {
        text = r.prompt;
    }
    // Chat text carries the template's special tokens; a plain prompt gets BOS as the file asks.
    auto prompt = std::make_shared<std::vector<int32_t>>(
        chat ? tokenizer_.encode(text, false, true) : tokenizer_.encode(text, true, false));
    if (prompt->empty())
        return reply_error(res, {.message = "the prompt is empty", .param = "prompt"});
    if (static_cast<int64_t>(prompt->size()) > limits_.max_prompt_tokens) {
        return reply_error(res, {.message = fmt::format("the prompt is {} tokens, the limit is {}",
                                                        prompt->size(), limits_.max_prompt_tokens),
                                 .param = chat ? "messages" : "prompt",
                                 .code = "context_length_exceeded"});
    }
    const int slot = pool_.acquire(*prompt, limits_.max_queued, metrics_);
    if (slot < 0) {
        return reply_error(res, {.status = 429,
                                 .type = "rate_limit_error",
                                 .message = "too many requests are waiting; retry later",
                                 .code = "queue_full"});
    }
    // The slot goes back when the last owner of this guard (handler or stream provider) ends.
    auto guard = std::shared_ptr<void>(nullptr, [this, slot](void*) { pool_.release(slot); });

    const std::string id =
        fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id_.fetch_add(1) + 1);
    const int64_t created = static_cast<int64_t>(std::time(nullptr));
    auto finish_metrics = [this, t0](const Generated& g) {
        ++metrics_.completions;
        if (g.cancelled) ++metrics_.cancelled;
        metrics_.latency_us_sum +=
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    };
    auto usage = [](const Generated& g) {
        return json{{"prompt_tokens", g.prompt_tokens},
                    {"completion_tokens", g.completion_tokens},
                    {"total_tokens", g.prompt_tokens + g.completion_tokens}};
    };

    if (!r.stream) {
        ++metrics_.active;
        Generated g;
        try {
            g = generate(slot, r, *prompt, t0, [](const std::vector<chat::Span>&) { return true; });
        } catch (...) {
            --metrics_.active;
            throw;
        }
        --metrics_.active;
        finish_metrics(g);
        json choice = {{"index", 0}, {"finish_reason", finish_reason(g.end)}};
        if (chat) {
            json msg = {{"role", "assistant"}, {"content", g.content}};
            if (template_.opens_reasoning()) msg["reasoning_content"] = g.reasoning;
            choice["message"] = msg;
        } else {
            choice["text"] = g.reasoning + g.content;
            choice["logprobs"] = nullptr;
        }
        const json body = {{"id", id},
                           {"object", chat ? "chat.completion" : "text_completion"},
                           {"created", created},
                           {"model", model_name_},
                           {"choices", json::array({choice})},
                           {"usage", usage(g)}};
        res.set_content(dump(body), "application/json");
        return;
    }

    auto req_copy = std::make_shared<GenRequest>(std::move(r));
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, guard, slot, req_copy, prompt, id,
                                                           created, chat, t0, finish_metrics,
                                                           usage](size_t, httplib::DataSink& sink) {
        auto send = [&](const json& chunk) {
            const std::string line = "data: " + dump(chunk) + "\n\n";
            return sink.is_writable() && sink.write(line.data(), line.size());
        };
        auto chunk = [&](json choice) {
            return json{{"id", id},
                        {"object", chat ? "chat.completion.chunk" : "text_completion"},
                        {"created", created},
                        {"model", model_name_},
                        {"choices", json::array({std::move(choice)})}};
        };
        if (chat && !send(chunk({{"index", 0},
                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                 {"finish_reason", nullptr}})))
            return false;
        ++metrics_.active;
        Generated g;
        try {
            g = generate(slot, *req_copy, *prompt, t0, [&](const std::vector<chat::Span>& spans) {
                for (const chat::Span& s : spans) {
                    if (s.text.empty()) continue;
                    json choice = {{"index", 0}, {"finish_reason", nullptr}};
                    if (!chat) {
                        choice["text"] = s.text;
                    } else if (s.channel == chat::Channel::kReasoning) {
                        choice["delta"] = {{"reasoning_content", s.text}};
                    } else {
                        choice["delta"] = {{"content", s.text}};
                    }
                    if (!send(chunk(std::move(choice)))) return false;
                }
                return sink.is_writable();
            });
        } catch (...) {
            --metrics_.active;
            throw;
        }
        --metrics_.active;
        finish_metrics(g);
        if (g.cancelled) return false;
        json last = {{"index", 0}, {"finish_reason", finish_reason(g.end)}};
        if (chat)
            last["delta"] = json::object();
        else
            last["text"] = "";
        if (!send(chunk(last))) return false;
        if (req_copy->include_usage) {
            json u = chunk(json());
            u["choices"] = json::array();
            u["usage"] = usage(g);
            if (!send(u)) return false;
        }
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
        return true;
    });
}

std::string Server::metrics_text() const {
    const double lat = static_cast<double>(metrics_.latency_us_sum.load()) * 1e-6;
    const double ttft = static_cast<double>(metrics_.ttft_us_sum.load()) * 1e-6;
    return fmt::format(
        "# HELP strata_requests_total HTTP requests received.\n"
        "# TYPE strata_requests_total counter\nstrata_requests_total {}\n"
        "# HELP strata_requests_rejected_total Requests answered with a 4xx error.\n"
        "# TYPE strata_requests_rejected_total counter\nstrata_requests_rejected_total {}\n"
        "# HELP strata_completions_total Generations finished (cancelled included).\n"
        "# TYPE strata_completions_total counter\nstrata_completions_total {}\n"
        "# HELP strata_cancelled_total Generations stopped because the client went away.\n"
        "# TYPE strata_cancelled_total counter\nstrata_cancelled_total {}\n"
        "# HELP strata_prompt_tokens_total Prompt tokens of generations.\n"
        "# TYPE strata_prompt_tokens_total counter\nstrata_prompt_tokens_total {}\n"
        "# HELP strata_generated_tokens_total Tokens sampled.\n"
        "# TYPE strata_generated_tokens_total counter\nstrata_generated_tokens_total {}\n"
        "# HELP strata_queue_depth Requests waiting for a slot.\n"
        "# TYPE strata_queue_depth gauge\nstrata_queue_depth {}\n"
        "# HELP strata_active_requests Requests generating.\n"
        "# TYPE strata_active_requests gauge\nstrata_active_requests {}\n"
        "# HELP strata_slots Sessions (--parallel).\n"
        "# TYPE strata_slots gauge\nstrata_slots {}\n"
        "# HELP strata_request_latency_seconds Time from request to last token.\n"
        "# TYPE strata_request_latency_seconds summary\n"
        "strata_request_latency_seconds_sum {:.6f}\nstrata_request_latency_seconds_count {}\n"
        "# HELP strata_time_to_first_token_seconds Time from request to first token.\n"
        "# TYPE strata_time_to_first_token_seconds summary\n"
        "strata_time_to_first_token_seconds_sum {:.6f}\n"
        "strata_time_to_first_token_seconds_count {}\n",
        metrics_.requests.load(), metrics_.rejected.load(), metrics_.completions.load(),
        metrics_.cancelled.load(), metrics_.prompt_tokens.load(), metrics_.generated_tokens.load(),
        metrics_.queued.load(), metrics_.active.load(), options_.parallel, lat,
        metrics_.completions.load(), ttft, metrics_.completions.load());
}

void Server::routes() {
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        ++metrics_.requests;
        if (options_.api_key.empty() || req.path == "/health")
            return httplib::Server::HandlerResponse::Unhandled;
        if (req.get_header_value("Authorization") == "Bearer " + options_.api_key)
            return httplib::Server::HandlerResponse::Unhandled;
        reply_error(res, {.status = 401,
                          .type = "authentication_error",
                          .message = "a valid API key is required (Authorization: Bearer KEY)",
                          .code = "invalid_api_key"});
        return httplib::Server::HandlerResponse::Handled;
    });
    http_.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& s) {
        handle_generate(q, s, true);
    });
    http_.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& s) {
        handle_generate(q, s, false);
    });
    http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        const json m = {
            {"id", model_name_}, {"object", "model"}, {"created", 0}, {"owned_by", "strata"}};
        res.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
    });
    http_.Get("/health", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(R"({"status":"ok"})", "application/json");
    });
    http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics_text(), "text/plain; version=0.0.4");
    });
    // httplib's own refusals (404, 413 over the payload limit, 400 unparsable HTTP) get a body
    // in OpenAI's format.
    http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        ApiError e{.status = res.status};
        if (res.status == 404) {
            e.message = fmt::format("no route {} {}", req.method, req.path);
            e.code = "not_found";
        } else if (res.status == 413) {
            e.message = fmt::format("the body is larger than {} bytes", limits_.max_body_bytes);
            e.code = "body_too_large";
        } else {
            e.message = fmt::format("HTTP {}", res.status);
        }
        ++metrics_.rejected;
        res.set_content(error_json(e), "application/json");
    });
    http_.set_exception_handler(
        [this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            ApiError e{.status = 500, .type = "server_error"};
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& x) {
                e.message = x.what();
            } catch (...) {
                e.message = "unknown error";
            }
            res.status = 500;
            res.set_content(error_json(e), "application/json");
        });
}

void Server::run() {
    routes();
    http_.set_payload_max_length(limits_.max_body_bytes);
    http_.set_read_timeout(options_.read_timeout_s, 0);
    http_.set_write_timeout(options_.write_timeout_s, 0);
    http_.set_keep_alive_timeout(5);
    // Generating requests, queued ones, and spare workers: httplib's read timeout is per read,
    // so a client dribbling its header a byte at a time holds a worker until the header limit;
    // the spares keep /health, /metrics and new requests answered past a few such clients.
    const size_t n_workers =
        static_cast<size_t>(std::max(options_.parallel, 1) + limits_.max_queued + 64);
    // glibc gives each thread that allocates an arena of its own (up to 8 per core) and keeps
    // what it freed there: after a burst that woke many workers, RSS stayed ~14% higher (scripts/
    // serve_hostile.py). Two arenas, and the heap trimmed when the server falls idle (below),
    // keep it within a few percent; the workers' allocations are small and short.
    mallopt(M_ARENA_MAX, 2);
    http_.new_task_queue = [n_workers] { return new httplib::ThreadPool(n_workers); };

    int port = options_.port;
    if (port == 0) {
        port = http_.bind_to_any_port(options_.host);
        if (port < 0) fail("cannot bind {} on any port", options_.host);
    } else if (!http_.bind_to_port(options_.host, port)) {
        fail("cannot bind {}:{} (in use, or not an address of this machine)", options_.host, port);
    }
    // SIGTERM/SIGINT are taken by a thread of their own (blocked everywhere else): it stops the
    // listener; listen_after_bind then finishes the requests already accepted and returns.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::atomic<bool> over{false};
    std::thread watcher([&] {
        const timespec tick{0, 200'000'000};
        int64_t trimmed_at = metrics_.requests.load();
        while (!over.load()) {
            if (sigtimedwait(&set, nullptr, &tick) > 0) {
                std::fprintf(stderr, "serve: signal received, finishing live requests\n");
                http_.stop();
                return;
            }
            // Idle after requests: hand the memory they freed back to the system.
            const int64_t seen = metrics_.requests.load();
            if (seen != trimmed_at && metrics_.active.load() == 0 && metrics_.queued.load() == 0) {
                malloc_trim(0);
                trimmed_at = seen;
            }
        }
    });
    std::fprintf(stderr, "serve: %s on http://%s:%d (%d slot%s, context %lld)\n",
                 model_name_.c_str(), options_.host.c_str(), port, options_.parallel,
                 options_.parallel == 1 ? "" : "s", static_cast<long long>(pool_.n_ctx()));
    std::fflush(stderr);
    const bool ok = http_.listen_after_bind();
    over = true;
    watcher.join();
    if (!ok) fail("the server on {}:{} stopped on an error", options_.host, port);
    std::fprintf(stderr, "serve: stopped\n");
}

}  // namespace

void serve(const ServeOptions& options) {
    Server server(options);
    server.run();
}

}  // namespace strata::server
