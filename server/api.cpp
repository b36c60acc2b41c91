#include "server/api.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace strata::server {
namespace {

using nlohmann::json;

[[noreturn]] void bad(std::string param, std::string message) {
    throw ApiError{.status = 400,
                   .type = "invalid_request_error",
                   .message = std::move(message),
                   .param = std::move(param),
                   .code = {}};
}

std::optional<float> get_float(const json& j, const char* key, double lo, double hi) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) bad(key, fmt::format("'{}' must be a number", key));
    const double v = it->get<double>();
    if (!(v >= lo && v <= hi))
        bad(key, fmt::format("'{}' is {}, expected {} to {}", key, v, lo, hi));
    return static_cast<float>(v);
}

std::optional<int64_t> get_int(const json& j, const char* key, int64_t lo, int64_t hi) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer()) bad(key, fmt::format("'{}' must be an integer", key));
    // Unsigned values above int64's range read as such, not wrapped.
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi))
        bad(key, fmt::format("'{}' is {}, expected {} to {}", key, it->get<uint64_t>(), lo, hi));
    const int64_t v = it->get<int64_t>();
    if (v < lo || v > hi) bad(key, fmt::format("'{}' is {}, expected {} to {}", key, v, lo, hi));
    return v;
}

bool get_bool(const json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return false;
    if (!it->is_boolean()) bad(key, fmt::format("'{}' must be true or false", key));
    return it->get<bool>();
}

// A message's content: a string, or OpenAI's array of {"type": "text", "text": ...} parts.
std::string content_text(const json& c, const std::string& param) {
    if (c.is_string()) return c.get<std::string>();
    if (c.is_null()) return {};
    if (!c.is_array()) bad(param, "'content' must be a string or an array of text parts");
    std::string text;
    for (const json& part : c) {
        if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
            !part["text"].is_string())
            bad(param,
                "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
        text += part["text"].get<std::string>();
    }
    return text;
}

}  // namespace

std::string error_json(const ApiError& e) {
    json err = {{"message", e.message}, {"type", e.type}};
    err["param"] = e.param.empty() ? json() : json(e.param);
    err["code"] = e.code.empty() ? json() : json(e.code);
    return json{{"error", err}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

GenRequest parse_request(std::string_view body, bool chat, const Limits& limits) {
    if (body.size() > limits.max_body_bytes) {
        throw ApiError{.status = 413,
                       .message = fmt::format("the body is {} bytes, the limit is {}", body.size(),
                                              limits.max_body_bytes),
                       .code = "body_too_large"};
    }
    json j;
    try {
        j = json::parse(body);
    } catch (const json::exception& e) {
        bad("", fmt::format("the body is not valid JSON: {}", e.what()));
    }
    if (!j.is_object()) bad("", "the body must be a JSON object");

    GenRequest r;
    r.chat = chat;
    if (const auto it = j.find("model"); it != j.end() && !it->is_null()) {
        if (!it->is_string()) bad("model", "'model' must be a string");
        r.model = it->get<std::string>();
    }
    if (chat) {
        const auto it = j.find("messages");
        if (it == j.end() || !it->is_array() || it->empty())
            bad("messages", "'messages' must be a non-empty array");
        if (static_cast<int64_t>(it->size()) > limits.max_messages)
            bad("messages",
                fmt::format("{} messages, the limit is {}", it->size(), limits.max_messages));
        for (size_t i = 0; i < it->size(); ++i) {
            const json& m = (*it)[i];
            const std::string param = fmt::format("messages[{}]", i);
            if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
                bad(param, "each message must be an object with a string 'role'");
            const std::string role = m["role"].get<std::string>();
            chat::Message msg;
            if (role == "system" || role == "developer") {
                msg.role = chat::Role::kSystem;
            } else if (role == "user") {
                msg.role = chat::Role::kUser;
            } else if (role == "assistant") {
                msg.role = chat::Role::kAssistant;
            } else {
                bad(param + ".role",
                    fmt::format("role '{}' is not supported (system, user, assistant)", role));
            }
            msg.content = content_text(m.value("content", json()), param + ".content");
            r.messages.push_back(std::move(msg));
        }
    } else {
        const auto it = j.find("prompt");
        if (it == j.end() || !it->is_string())
            bad("prompt", "'prompt' must be a string (token arrays are not supported)");
        r.prompt = it->get<std::string>();
    }
    r.stream = get_bool(j, "stream");
    if (const auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) bad("stream_options", "'stream_options' must be an object");
        r.include_usage = get_bool(*it, "include_usage");
    }
    r.temperature = get_float(j, "temperature", 0.0, 2.0);
    r.top_p = get_float(j, "top_p", 0.0, 1.0);
    r.min_p = get_float(j, "min_p", 0.0, 1.0);
    r.repeat_penalty = get_float(j, "repeat_penalty", 0.01, 10.0);
    r.top_k = get_int(j, "top_k", 0, 1 << 20);
    if (const auto s = get_int(j, "seed", INT64_MIN, INT64_MAX)) r.seed = static_cast<uint64_t>(*s);
    const auto mct = get_int(j, "max_completion_tokens", 0, INT64_MAX);
    const auto mt = get_int(j, "max_tokens", 0, INT64_MAX);
    r.max_tokens = mct ? mct : mt;
    if (r.max_tokens && *r.max_tokens > limits.max_tokens) {
        bad(mct ? "max_completion_tokens" : "max_tokens",
            fmt::format("max_tokens is {}, the server's limit is {}", *r.max_tokens,
                        limits.max_tokens));
    }
    if (const auto n = get_int(j, "n", 1, 1)) (void)n;  // only n = 1
    if (const auto it = j.find("stop"); it != j.end() && !it->is_null()) {
        if (it->is_string()) {
            r.stop.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            for (const json& s : *it) {
                if (!s.is_string()) bad("stop", "'stop' must be a string or an array of strings");
                r.stop.push_back(s.get<std::string>());
            }
        } else {
            bad("stop", "'stop' must be a string or an array of strings");
        }
        if (static_cast<int64_t>(r.stop.size()) > limits.max_stops)
            bad("stop", fmt::format("at most {} stop strings", limits.max_stops));
        for (const std::string& s : r.stop)
            if (s.empty()) bad("stop", "stop strings must not be empty");
    }
    r.system_as_is = get_bool(j, "system_as_is");
    r.ignore_eos = get_bool(j, "ignore_eos");
    return r;
}

}  // namespace strata::server
