// The OpenAI-compatible request format of `strata serve`: a request body checked against the
// server's limits and turned into a GenRequest, and errors written in OpenAI's error format
// ({"error": {"message", "type", "param", "code"}}). No HTTP here, so that it is unit-tested alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/chat/template.h"

namespace strata::server {

struct Limits {
    size_t max_body_bytes = 1 << 20;  // larger bodies: 413
    int64_t max_prompt_tokens = 0;    // 0: the context size less one
    int64_t max_tokens = 4096;        // a request asking for more: 400
    int64_t max_messages = 1024;      // messages in one chat request
    int64_t max_stops = 4;            // OpenAI's own limit on `stop`
    int64_t max_queued = 16;          // requests waiting for a slot; more: 429
};

// A request refused: the HTTP status and OpenAI's error fields.
struct ApiError {
    int status = 400;
    std::string type = "invalid_request_error";
    std::string message;
    std::string param;  // the field at fault; empty: none
    std::string code;   // empty: null
};

std::string error_json(const ApiError& error);

// One /v1/chat/completions or /v1/completions request.
struct GenRequest {
    bool chat = true;
    std::vector<chat::Message> messages;  // chat
    std::string prompt;                   // completions
    std::string model;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
    std::optional<float> temperature, top_p, min_p, repeat_penalty;
    std::optional<int64_t> top_k;
    std::optional<uint64_t> seed;
    std::optional<int64_t> max_tokens;  // max_completion_tokens or max_tokens
    std::vector<std::string> stop;
    // R1: system prompt folded into the first user turn unless the request sets
    // "system_as_is": true (a Strata extension).
    bool system_as_is = false;
    // End-of-generation tokens are never sampled: the answer runs to max_tokens (llama-server's
    // "ignore_eos"; benchmarks and tests).
    bool ignore_eos = false;
};

// Parses and checks a request body; throws ApiError (400) naming the field for malformed JSON,
// wrong types, out-of-range values and anything above `limits`.
GenRequest parse_request(std::string_view body, bool chat, const Limits& limits);

}  // namespace strata::server
