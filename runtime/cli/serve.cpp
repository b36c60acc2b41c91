// strata serve: an OpenAI-compatible HTTP server (server/server.h does the work).
//
//   strata serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key K] [--parallel N]
//                [--ctx N] [-t N] [--max-body BYTES] [--max-tokens N] [--max-queue N]
#include <fmt/format.h>

#include <memory>

#include "runtime/cli/commands.h"
#include "runtime/cli/default_model.h"
#include "runtime/cli/infer_args.h"
#include "runtime/error.h"
#include "server/server.h"

namespace strata::cli {

void add_serve(CLI::App& app) {
    auto opts = std::make_shared<server::ServeOptions>();
    CLI::App* cmd =
        app.add_subcommand("serve",
                           "OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, "
                           "/v1/models, /health, /metrics");
    add_model_option(cmd, opts->model_path);
    cmd->add_option("--host", opts->host,
                    "Address to listen on (default 127.0.0.1: this machine only)");
    cmd->add_option("--port", opts->port,
                    "Port (default 8080; 0: any free port, printed on stderr)")
        ->check(CLI::Range(0, 65535));
    cmd->add_option("--api-key", opts->api_key,
                    "Require 'Authorization: Bearer KEY' on every request but /health");
    cmd->add_option("--parallel", opts->parallel,
                    "Requests served at once, their decode steps batched into one forward pass; "
                    "each has a KV cache of its own (default 1)")
        ->check(CLI::Range(1, 256));
    cmd->add_option("--max-body", opts->limits.max_body_bytes,
                    "Largest request body in bytes (default 1 MiB)");
    cmd->add_option("--max-tokens", opts->limits.max_tokens,
                    "Largest max_tokens a request may ask for, and the default (default 4096)")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
    cmd->add_option("--max-prompt", opts->limits.max_prompt_tokens,
                    "Longest prompt in tokens (default: the context less one)");
    cmd->add_option("--max-queue", opts->limits.max_queued,
                    "Requests that may wait for a slot; more are refused with 429 (default 16)")
        ->check(CLI::Range(int64_t{0}, int64_t{4096}));
    cmd->add_option("--timeout", opts->read_timeout_s,
                    "Seconds a client may stay silent (reading or writing) before it is dropped "
                    "(default 30)")
        ->check(CLI::Range(1, 3600));
    cmd->add_option("--request-timeout", opts->request_timeout_s,
                    "Seconds a request (headers and body) may take to arrive whole before its "
                    "connection is dropped")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    add_session_options(cmd, opts->session);
    cmd->add_option("-t", opts->session.n_threads, "Threads of the forward pass (as --threads)");
    cmd->callback([opts] {
        opts->write_timeout_s = opts->read_timeout_s;
        use_default_model(opts->model_path);
        server::serve(*opts);
    });
}

}  // namespace strata::cli
