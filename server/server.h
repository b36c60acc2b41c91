// `strata serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one model.
//
// Continuous batching (server/scheduler.h): --parallel N slots, each a Session with its own KV
// cache, all on one Engine (one forward pass and, under --ram-budget, one expert cache). One
// scheduler thread runs every generation: each step it admits waiting requests into free slots,
// prefills their prompts a chunk at a time, and decodes one token of every live request in one
// batched pass; HTTP handler threads only parse, queue, and pass the text on as it comes. At most
// Limits::max_queued requests wait beyond the free slots (429 beyond). The slot chosen is the
// free one whose cache shares the longest prefix with the prompt, so a conversation's next turn
// reuses its prefill. A client that goes away (a failed write when streaming, a closed socket
// otherwise) has its generation stopped and its slot freed at the next step.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/session.h"
#include "server/api.h"

namespace strata::server {

struct ServeOptions {
    std::string model_path;
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string api_key;  // empty: no authentication
    int parallel = 1;     // slots: sequences decoded together
    SessionOptions session;
    Limits limits;
    int read_timeout_s = 30;   // a client that sends nothing this long is dropped
    int write_timeout_s = 30;  // one that reads nothing this long is dropped
    // A request (headers and body) must arrive whole within this many seconds of its connection
    // opening or of the last answer on it (against clients that dribble it: httplib's timeouts
    // are per read).
    int request_timeout_s = 60;
};

// Serves until SIGTERM or SIGINT, then stops accepting, lets live requests finish and returns.
// Throws strata::Error when the model cannot be loaded or the address cannot be bound.
void serve(const ServeOptions& options);

}  // namespace strata::server
