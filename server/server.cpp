#include "server/server.h"

#include <dirent.h>
#include <fmt/format.h>
#include <httplib.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>
#include <vector>

#include "runtime/chat/detect.h"
#include "runtime/chat/turn.h"
#include "runtime/error.h"
#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/tokenizer/tokenizer.h"
#include "server/connection_watch.h"
#include "server/metrics.h"
#include "server/scheduler.h"

namespace strata::server {
namespace {

using nlohmann::json;

// How often a handler waiting for its generation looks for new text and for a closed socket.
constexpr std::chrono::milliseconds kPoll{50};

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
          scheduler_({.model = &model_,
                      .tokenizer = &tokenizer_,
                      .chat_template = &template_,
                      .session = options.session,
                      .n_slots = std::max(options.parallel, 1),
                      .limits = options.limits,
                      .metrics = &metrics_}),
          model_name_(std::filesystem::path(options.model_path).stem().string()) {
        limits_ = options.limits;
        if (limits_.max_prompt_tokens <= 0 || limits_.max_prompt_tokens >= scheduler_.n_ctx())
            limits_.max_prompt_tokens = scheduler_.n_ctx() - 1;
    }

    void run();

  private:
    static Model load_model_file(const std::string& path) {
        if (path.empty()) throw UsageError("no model given: pass -m MODEL");
        return Model::load(gguf::File::open(path));
    }
    void routes();
    // Parses and checks a request, queues it for the scheduler and answers with its text, whole
    // or streamed as it comes.
    void handle_generate(const httplib::Request& req, httplib::Response& res, bool chat);
    void reply_error(httplib::Response& res, const ApiError& e) {
        ++metrics_.rejected;
        res.status = e.status;
        res.set_content(error_json(e), "application/json");
    }
    std::string metrics_text() const;
    std::string batch_rows_text() const;

    ServeOptions options_;
    Limits limits_;
    Model model_;
    tokenizer::Tokenizer tokenizer_;
    chat::ChatTemplate template_;
    Metrics metrics_;
    Scheduler scheduler_;  // the engine, the slots, and the thread that runs every generation
    std::string model_name_;
    std::atomic<int64_t> next_id_{0};
    httplib::Server http_;
    ConnectionWatch watch_;  // drops clients whose request does not arrive in time
};

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
    std::vector<int32_t> prompt =
        chat ? tokenizer_.encode(text, false, true) : tokenizer_.encode(text, true, false);
    if (prompt.empty())
        return reply_error(res, {.message = "the prompt is empty", .param = "prompt"});
    if (static_cast<int64_t>(prompt.size()) > limits_.max_prompt_tokens) {
        return reply_error(res, {.message = fmt::format("the prompt is {} tokens, the limit is {}",
                                                        prompt.size(), limits_.max_prompt_tokens),
                                 .param = chat ? "messages" : "prompt",
                                 .code = "context_length_exceeded"});
    }
    auto job = std::make_shared<Job>(std::move(r), std::move(prompt), t0);
    if (!scheduler_.submit(job)) {
        return reply_error(res, {.status = 429,
                                 .type = "rate_limit_error",
                                 .message = "too many requests are waiting; retry later",
                                 .code = "queue_full"});
    }
    // The generation is cancelled when the last owner of this guard (handler or stream provider)
    // ends before it did: a client gone before its stream began.
    auto guard = std::shared_ptr<void>(nullptr, [job](void*) { job->cancel(); });

    const std::string id =
        fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id_.fetch_add(1) + 1);
    const int64_t created = static_cast<int64_t>(std::time(nullptr));
    auto usage = [](const Generated& g) {
        return json{{"prompt_tokens", g.prompt_tokens},
                    {"completion_tokens", g.completion_tokens},
                    {"total_tokens", g.prompt_tokens + g.completion_tokens}};
    };

    if (!job->request().stream) {
        // Nothing is written before the answer, so a client that goes away is seen on its socket.
        const int fd = connection_fd(req);
        std::vector<chat::Span> spans;
        while (!job->wait(spans, kPoll)) {
            spans.clear();
            if (fd >= 0 && !job->cancelled() && peer_closed(fd)) job->cancel();
        }
        const Generated& g = job->result();
        if (!g.error.empty()) throw Error(g.error);
        if (g.cancelled) return;  // no one to answer
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

    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, guard, job, id, created, chat,
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
        // A write that fails means the client is gone: its generation stops at the next step.
        auto gone = [&] {
            job->cancel();
            return false;
        };
        if (chat && !send(chunk({{"index", 0},
                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                 {"finish_reason", nullptr}})))
            return gone();
        std::vector<chat::Span> spans;
        for (bool over = false; !over;) {
            spans.clear();
            over = job->wait(spans, kPoll);
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
                if (!send(chunk(std::move(choice)))) return gone();
            }
            if (!sink.is_writable()) return gone();
        }
        const Generated& g = job->result();
        // A failed generation ends the stream without [DONE]: the client sees it cut short.
        if (g.cancelled || !g.error.empty()) return false;
        json last = {{"index", 0}, {"finish_reason", finish_reason(g.end)}};
        if (chat)
            last["delta"] = json::object();
        else
            last["text"] = "";
        if (!send(chunk(last))) return false;
        if (job->request().include_usage) {
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
               "# HELP strata_active_requests Requests holding a slot (prefilling or decoding).\n"
               "# TYPE strata_active_requests gauge\nstrata_active_requests {}\n"
               "# HELP strata_slots Sequences decoded together at most (--parallel).\n"
               "# TYPE strata_slots gauge\nstrata_slots {}\n"
               "# HELP strata_request_latency_seconds Time from request to last token.\n"
               "# TYPE strata_request_latency_seconds summary\n"
               "strata_request_latency_seconds_sum {:.6f}\nstrata_request_latency_seconds_count "
               "{}\n"
               "# HELP strata_time_to_first_token_seconds Time from request to first token.\n"
               "# TYPE strata_time_to_first_token_seconds summary\n"
               "strata_time_to_first_token_seconds_sum {:.6f}\n"
               "strata_time_to_first_token_seconds_count {}\n",
               metrics_.requests.load(), metrics_.rejected.load(), metrics_.completions.load(),
               metrics_.cancelled.load(), metrics_.prompt_tokens.load(),
               metrics_.generated_tokens.load(), metrics_.queued.load(), metrics_.active.load(),
               options_.parallel, lat, metrics_.completions.load(), ttft,
               metrics_.completions.load()) +
           batch_rows_text();
}

std::string Server::batch_rows_text() const {
    std::string out =
        "# HELP strata_batch_rows Sequences in each batched decode step.\n"
        "# TYPE strata_batch_rows histogram\n";
    int64_t cumulative = 0;
    for (size_t b = 0; b < metrics_.batch_steps.size(); ++b) {
        cumulative += metrics_.batch_steps[b].load();
        const std::string le = b < Metrics::kBatchBuckets.size()
                                   ? std::to_string(Metrics::kBatchBuckets[b])
                                   : std::string("+Inf");
        out += fmt::format("strata_batch_rows_bucket{{le=\"{}\"}} {}\n", le, cumulative);
    }
    out += fmt::format("strata_batch_rows_sum {}\nstrata_batch_rows_count {}\n",
                       metrics_.batch_rows_sum.load(), metrics_.batch_count.load());
    out += fmt::format(
        "# HELP strata_slow_clients_dropped_total Connections shut down because their request "
        "did not arrive whole within --request-timeout.\n"
        "# TYPE strata_slow_clients_dropped_total counter\n"
        "strata_slow_clients_dropped_total {}\n",
        watch_.dropped());
    return out;
}

void Server::routes() {
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        ++metrics_.requests;
        watch_.answering(req, true);
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
    // Called when an answer is out: the connection's clock starts again for its next request.
    http_.set_logger([this](const httplib::Request& req, const httplib::Response&) {
        watch_.answering(req, false);
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
    // After the mask: the watch's thread must not take the signals either.
    watch_.start(port, std::chrono::seconds(options_.request_timeout_s));
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
                 options_.parallel == 1 ? "" : "s", static_cast<long long>(scheduler_.n_ctx()));
    std::fflush(stderr);
    const bool ok = http_.listen_after_bind();
    // Every handler has returned: what the scheduler still holds has no one waiting for it.
    scheduler_.stop();
    watch_.stop();
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
