// strata serve with a steered model (tests/chat_test_util.h, write_chain_model): greedy decoding
// writes the reasoning "Hm.", </think>, the answer "OK!" and EOS, so the split into
// reasoning_content and content is checked on known text, whole and streamed.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "runtime/chat/conversation.h"
#include "runtime/chat/detect.h"
#include "tests/chat_test_util.h"
#include "tests/test_util.h"

extern char** environ;

namespace strata {
namespace {

using nlohmann::json;

// A `strata serve` on a free loopback port, stopped by SIGTERM when destroyed.
class ServeProcess {
  public:
    ServeProcess(const test::TempDir& dir, const std::string& model) {
        log_ = (dir / "serve.log").string();
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::vector<std::string> args = {STRATA_BIN, "serve", "-m", model,
                                         "--port",   "0",     "-t", "1"};
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (posix_spawn(&pid_, STRATA_BIN, &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
        const std::regex announce(R"(http://127\.0\.0\.1:(\d+))");
        for (int i = 0; i < 300 && pid_ > 0 && port_ == 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            std::smatch m;
            const std::string text = log();
            if (std::regex_search(text, m, announce)) port_ = std::stoi(m[1]);
        }
    }
    ~ServeProcess() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        int status = 0;
        waitpid(pid_, &status, 0);
    }
    int port() const { return port_; }
    std::string log() const {
        std::ifstream in(log_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

  private:
    std::string log_;
    pid_t pid_ = -1;
    int port_ = 0;
};

TEST(ServeReasoning, SplitWholeAndStreamed) {
    test::TempDir dir;
    const std::string base = (dir / "base.gguf").string();
    const auto synth = test::run_strata("synth --arch deepseek2 --preset tiny -o '" + base + "'");
    ASSERT_EQ(synth.status, 0) << synth.err;
    const gguf::File file = gguf::File::open(base);
    const auto tok = tokenizer::Tokenizer::load(file);
    const auto detected = chat::detect_template(file, tok);
    ASSERT_EQ(detected.tmpl.family(), chat::Family::kDeepSeekR1) << detected.reason;
    // The server folds no system prompt here: the prompt is the one user turn "x".
    chat::Conversation conv(detected.tmpl, "", false);
    conv.add_user("x");
    const int32_t start = tok.encode(conv.prompt(), false, true).back();
    const auto b = [&](char c) { return tok.byte_token(static_cast<uint8_t>(c)); };
    const auto close = tok.find_token("</think>");
    ASSERT_TRUE(close.has_value());
    const std::vector<int32_t> chain = {start,  b('H'), b('m'), b('.'),   *close,
                                        b('O'), b('K'), b('!'), tok.eos()};
    std::map<int32_t, int32_t> next;
    for (size_t i = 0; i + 1 < chain.size(); ++i) next[chain[i]] = chain[i + 1];
    ASSERT_EQ(next.size() + 1, chain.size());
    const std::string model = (dir / "answer.gguf").string();
    test::write_chain_model(file, next, model);

    ServeProcess server(dir, model);
    ASSERT_GT(server.port(), 0) << server.log();
    httplib::Client client("127.0.0.1", server.port());
    client.set_read_timeout(60, 0);
    const json request = {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                          {"temperature", 0},
                          {"max_tokens", 32}};

    const auto whole = client.Post("/v1/chat/completions", request.dump(), "application/json");
    ASSERT_TRUE(whole) << httplib::to_string(whole.error());
    ASSERT_EQ(whole->status, 200) << whole->body;
    const json j = json::parse(whole->body);
    EXPECT_EQ(j["choices"][0]["message"]["reasoning_content"], "Hm.");
    EXPECT_EQ(j["choices"][0]["message"]["content"], "OK!");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(j["usage"]["completion_tokens"], 8);  // H m . </think> O K ! EOS

    json streamed = request;
    streamed["stream"] = true;
    const auto sse = client.Post("/v1/chat/completions", streamed.dump(), "application/json");
    ASSERT_TRUE(sse);
    ASSERT_EQ(sse->status, 200) << sse->body;
    std::string reasoning, content, finish;
    std::istringstream lines(sse->body);
    bool done = false;
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("data: ", 0) != 0) continue;
        if (line == "data: [DONE]") {
            done = true;
            continue;
        }
        const json c = json::parse(line.substr(6))["choices"][0];
        reasoning += c["delta"].value("reasoning_content", "");
        content += c["delta"].value("content", "");
        if (c["finish_reason"].is_string()) finish = c["finish_reason"];
    }
    EXPECT_TRUE(done) << sse->body;
    EXPECT_EQ(reasoning, "Hm.");
    EXPECT_EQ(content, "OK!");
    EXPECT_EQ(finish, "stop");
}

}  // namespace
}  // namespace strata
