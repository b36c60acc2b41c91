// `strata serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one model.
//
// --parallel N Sessions, each with its own KV cache, serve N requests at once; the forward pass
// is NOT shared between them (no continuous batching yet). A request waits for a free slot, at
// most Limits::max_queued of them wait (429 beyond). The slot chosen is the free one whose cache
// shares the longest prefix with the prompt, so a conversation's next turn reuses its prefill.
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
    int parallel = 1;     // slots (Sessions)
    SessionOptions session;
    Limits limits;
    int read_timeout_s = 30;   // a client that sends nothing this long is dropped
    int write_timeout_s = 30;  // one that reads nothing this long is dropped
};

// Serves until SIGTERM or SIGINT, then stops accepting, lets live requests finish and returns.
// Throws strata::Error when the model cannot be loaded or the address cannot be bound.
void serve(const ServeOptions& options);

}  // namespace strata::server
