// strata serve's request parsing and limits (server/api.h): what a body becomes, and the 4xx
// each kind of bad body gets, in OpenAI's error format.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api.h"

namespace strata::server {
namespace {

using nlohmann::json;

// The error a body gets, or a status of 0 when it is accepted.
ApiError refusal(const std::string& body, bool chat = true, const Limits& limits = {}) {
    try {
        parse_request(body, chat, limits);
    } catch (const ApiError& e) {
        return e;
    }
    return ApiError{.status = 0};
}

TEST(ServeApi, ChatRequestFields) {
    const GenRequest r = parse_request(
        R"({"model": "m", "messages": [{"role": "system", "content": "S"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "A"}],
            "stream": true, "stream_options": {"include_usage": true}, "temperature": 0,
            "top_p": 0.5, "top_k": 7, "seed": 42, "max_tokens": 9, "stop": ["x", "yz"]})",
        true, {});
    ASSERT_EQ(r.messages.size(), 3u);
    EXPECT_EQ(r.messages[0].role, chat::Role::kSystem);
    EXPECT_EQ(r.messages[1].content, "ab");
    EXPECT_EQ(r.messages[2].role, chat::Role::kAssistant);
    EXPECT_TRUE(r.stream);
    EXPECT_TRUE(r.include_usage);
    EXPECT_EQ(r.temperature, 0.0f);
    EXPECT_EQ(r.top_p, 0.5f);
    EXPECT_EQ(r.top_k, 7);
    EXPECT_EQ(r.seed, 42u);
    EXPECT_EQ(r.max_tokens, 9);
    EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "yz"}));
    EXPECT_FALSE(r.system_as_is);
}

TEST(ServeApi, UnsetFieldsStayUnset) {
    // R1's temperature 0.6 applies only when the request leaves it unset.
    const GenRequest r =
        parse_request(R"({"messages": [{"role": "user", "content": "hi"}]})", true, {});
    EXPECT_FALSE(r.temperature.has_value());
    EXPECT_FALSE(r.max_tokens.has_value());
    EXPECT_FALSE(r.stream);
}

TEST(ServeApi, MaxCompletionTokensWins) {
    const GenRequest r =
        parse_request(R"({"prompt": "p", "max_tokens": 5, "max_completion_tokens": 3})", false, {});
    EXPECT_EQ(r.max_tokens, 3);
    EXPECT_EQ(r.prompt, "p");
}

TEST(ServeApi, MalformedJsonIs400) {
    for (const char* body : {"", "{", "{\"messages\": [", "nul", "\xff\xfe", "[1, 2]", "42"}) {
        const ApiError e = refusal(body);
        EXPECT_EQ(e.status, 400) << body;
        EXPECT_FALSE(e.message.empty());
    }
}

TEST(ServeApi, WrongTypesNameTheField) {
    const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
    const std::pair<std::string, std::string> cases[] = {
        {R"({"messages": "hi"})", "messages"},
        {R"({"messages": []})", "messages"},
        {R"({"messages": [{"content": "x"}]})", "messages[0]"},
        {R"({"messages": [{"role": "tool", "content": "x"}]})", "messages[0].role"},
        {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
        {"{" + msgs + R"(, "max_tokens": "10"})", "max_tokens"},
        {"{" + msgs + R"(, "max_tokens": 1.5})", "max_tokens"},
        {"{" + msgs + R"(, "max_tokens": -1})", "max_tokens"},
        {"{" + msgs + R"(, "temperature": "hot"})", "temperature"},
        {"{" + msgs + R"(, "temperature": 9})", "temperature"},
        {"{" + msgs + R"(, "stream": "yes"})", "stream"},
        {"{" + msgs + R"(, "stop": [1]})", "stop"},
        {"{" + msgs + R"(, "stop": ""})", "stop"},
        {"{" + msgs + R"(, "model": 3})", "model"},
        {"{" + msgs + R"(, "n": 2})", "n"},
    };
    for (const auto& [body, param] : cases) {
        const ApiError e = refusal(body);
        EXPECT_EQ(e.status, 400) << body;
        EXPECT_EQ(e.param, param) << body;
    }
    EXPECT_EQ(refusal(R"({"prompt": [1, 2]})", false).param, "prompt");
}

TEST(ServeApi, Limits) {
    const Limits limits{.max_body_bytes = 100, .max_tokens = 50, .max_stops = 2};
    EXPECT_EQ(refusal(std::string(101, ' '), true, limits).status, 413);
    const std::string msgs = R"("messages": [{"role": "user", "content": "hi"}])";
    EXPECT_EQ(refusal("{" + msgs + R"(, "max_tokens": 50})", true, limits).status, 0);
    const ApiError big = refusal("{" + msgs + R"(, "max_tokens": 51})", true, limits);
    EXPECT_EQ(big.status, 400);
    EXPECT_NE(big.message.find("50"), std::string::npos) << big.message;
    // Beyond int64: refused as too large, not wrapped to a small number.
    EXPECT_EQ(refusal("{" + msgs + R"(, "max_tokens": 18446744073709551615})", true, limits).param,
              "max_tokens");
    EXPECT_EQ(refusal("{" + msgs + R"(, "stop": ["a", "b", "c"]})", true, limits).param, "stop");
}

TEST(ServeApi, ErrorJsonIsOpenAIFormat) {
    const json j = json::parse(error_json({.status = 400, .message = "bad \xff", .param = "x"}));
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_EQ(j["error"]["param"], "x");
    EXPECT_TRUE(j["error"]["code"].is_null());
    EXPECT_TRUE(j["error"]["message"].is_string());
}

}  // namespace
}  // namespace strata::server
