// `strata run --chat` as a user meets it: in a pseudo-terminal (forkpty) for the interactive
// session — the reasoning dimmed and apart from the answer, Ctrl-C mid-answer and the session
// going on, /exit — and through pipes for the one-turn, scriptable form.
//
// A random-weight model writes gibberish, so the model here is steered: a synthesized deepseek2
// file whose layers are all zero, so that the hidden state is the last token's embedding, with
// embeddings and output rows chosen so that greedy decoding walks a fixed chain of tokens. Its
// forward pass, sampler, tokenizer and chat code are the real ones.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>

#include "runtime/chat/conversation.h"
#include "runtime/chat/detect.h"
#include "runtime/gguf.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/chat_test_util.h"
#include "tests/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The two steered models, written once per process from a synthesized tiny deepseek2.
struct Models {
    std::string answer;  // reasoning "Hm.", then </think>, then the answer "OK!", then EOS
    std::string loop;    // reasoning "lalala…" until stopped
    std::string error;   // why they could not be made
};

const Models& models() {
    static test::TempDir dir;
    static const Models m = [] {
        Models r;
        const std::string base = (dir / "base.gguf").string();
        const auto synth =
            test::run_strata("synth --arch deepseek2 --preset tiny -o '" + base + "'");
        if (synth.status != 0) {
            r.error = "strata synth failed: " + synth.err;
            return r;
        }
        const gguf::File file = gguf::File::open(base);
        const auto tok = tokenizer::Tokenizer::load(file);
        // The chat's prompt ends with the generation prompt; its last token starts each chain.
        const auto detected = chat::detect_template(file, tok);
        if (detected.tmpl.family() != chat::Family::kDeepSeekR1) {
            r.error = "the synthesized model is not detected as R1: " + detected.reason;
            return r;
        }
        chat::Conversation conv(detected.tmpl, "", false);
        conv.add_user("x");
        const int32_t start = tok.encode(conv.prompt(), false, true).back();
        const auto b = [&](char c) { return tok.byte_token(static_cast<uint8_t>(c)); };
        const auto close = tok.find_token("</think>");
        if (!close) {
            r.error = "the synthesized vocabulary has no </think> token";
            return r;
        }
        const std::vector<int32_t> chain = {start,  b('H'), b('m'), b('.'),   *close,
                                            b('O'), b('K'), b('!'), tok.eos()};
        std::map<int32_t, int32_t> answer;
        for (size_t i = 0; i + 1 < chain.size(); ++i) answer[chain[i]] = chain[i + 1];
        if (answer.size() + 1 != chain.size()) {
            r.error = "the chain repeats a token";
            return r;
        }
        r.answer = (dir / "answer.gguf").string();
        test::write_chain_model(file, answer, r.answer);
        r.loop = (dir / "loop.gguf").string();
        test::write_chain_model(file, {{start, b('l')}, {b('l'), b('a')}, {b('a'), b('l')}},
                                r.loop);
        return r;
    }();
    return m;
}

#define REQUIRE_MODELS()                                       \
    do {                                                       \
        if (!models().error.empty()) FAIL() << models().error; \
    } while (0)

// ---------------------------------------------------------------------------------------------
// One turn through pipes.

TEST(ChatCli, OneTurnPrintsReasoningThenAnswer) {
    REQUIRE_MODELS();
    const std::string m = "'" + models().answer + "'";
    auto r = test::run_strata("run --chat -m " + m + " -p hi --greedy");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "<think>\nHm.\n</think>\n\nOK!\n");
    EXPECT_NE(r.err.find("deepseek-r1 template"), std::string::npos) << r.err;

    r = test::run_strata("run --chat -m " + m + " -p hi --greedy --hide-reasoning");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "OK!\n");

    r = test::run_strata("run --chat -m " + m + " -p hi --greedy --stop zz --stop K");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "<think>\nHm.\n</think>\n\nO\n");

    r = test::run_strata("run --chat -m " + m + " -p hi --greedy -n 2");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "<think>\nHm\n</think>\n");
}

TEST(ChatCli, BadChatFlagsAreUsageErrors) {
    REQUIRE_MODELS();
    const std::string m = "'" + models().answer + "'";
    auto r = test::run_strata("run --chat -m " + m + " -p hi --chat-template alpaca");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("unknown template 'alpaca'"), std::string::npos) << r.err;
    r = test::run_strata("run --chat -m " + m + " --tokens 1,2");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--tokens"), std::string::npos) << r.err;
    r = test::run_strata("run --chat -m " + m + " -p hi --stop ''");
    EXPECT_EQ(r.status, 2);
}

// ---------------------------------------------------------------------------------------------
// The interactive session in a pseudo-terminal.

class Terminal {
  public:
    explicit Terminal(const std::vector<std::string>& args) {
        winsize size{};
        size.ws_row = 40;
        size.ws_col = 200;
        pid_ = forkpty(&fd_, nullptr, nullptr, &size);
        if (pid_ == 0) {
            ::setenv("TERM", "xterm", 1);
            ::unsetenv("NO_COLOR");
            std::vector<char*> argv;
            std::string bin = STRATA_BIN;
            argv.push_back(bin.data());
            std::vector<std::string> copy = args;
            for (std::string& a : copy) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(bin.c_str(), argv.data());
            ::_exit(127);
        }
        EXPECT_GT(pid_, 0) << "forkpty: " << std::strerror(errno);
    }
    ~Terminal() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (fd_ >= 0) ::close(fd_);
    }

    // Reads until `needle` appears at or after `from`; returns its position, or npos after
    // `timeout`.
    size_t wait_for(std::string_view needle, size_t from, double timeout_s = 30) {
        const auto deadline = after(timeout_s);
        for (;;) {
            const size_t at = output_.find(needle, from);
            if (at != std::string::npos) return at;
            if (Clock::now() > deadline || !read_some(deadline)) return std::string::npos;
        }
    }
    void send(std::string_view keys) {
        ASSERT_EQ(::write(fd_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
    }
    // The exit status, or -1 when the program did not exit in time.
    int wait_exit(double timeout_s = 30) {
        const auto deadline = after(timeout_s);
        for (;;) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            if (Clock::now() > deadline) return -1;
            read_some(Clock::now() + std::chrono::milliseconds(50));
        }
    }
    const std::string& output() const { return output_; }

  private:
    static Clock::time_point after(double seconds) {
        return Clock::now() +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    }
    // Reads what the program wrote, waiting at most until `deadline`; false when the terminal
    // was closed.
    bool read_some(Clock::time_point deadline) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) <= 0) return true;
        char buf[4096];
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) return false;  // EIO: the program closed the terminal
        output_.append(buf, static_cast<size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int fd_ = -1;
    bool exited_ = false;
    std::string output_;
};

// What a failing check shows: the screen so far, escapes visible.
std::string screen(const Terminal& t) {
    std::string s;
    for (const char c : t.output()) {
        if (c == '\x1b')
            s += "\\e";
        else if (c == '\r')
            s += "\\r";
        else
            s += c;
    }
    return s;
}

constexpr size_t npos = std::string::npos;

TEST(ChatCli, InteractiveSessionShowsReasoningDimmedAndApart) {
    REQUIRE_MODELS();
    Terminal t({"run", "--chat", "-m", models().answer, "--greedy"});
    size_t at = t.wait_for("> ", 0);
    ASSERT_NE(at, npos) << screen(t);
    t.send("hi\r");
    // The terminal turns "\n" into "\r\n".
    const std::string turn = "\x1b[2mHm.\x1b[0m\r\n\r\nOK!\r\n";
    at = t.wait_for(turn, at);
    ASSERT_NE(at, npos) << screen(t);
    at = t.wait_for("> ", at);
    ASSERT_NE(at, npos) << screen(t);
    // A second turn on the kept context answers the same way.
    t.send("and now?\r");
    at = t.wait_for(turn, at);
    ASSERT_NE(at, npos) << screen(t);
    at = t.wait_for("> ", at);
    ASSERT_NE(at, npos) << screen(t);
    t.send("\x04");  // Ctrl-D
    EXPECT_EQ(t.wait_exit(), 0) << screen(t);
}

TEST(ChatCli, CtrlCStopsAnAnswerAndTheSessionGoesOn) {
    REQUIRE_MODELS();
    Terminal t({"run", "--chat", "-m", models().loop, "--greedy"});
    size_t at = t.wait_for("> ", 0);
    ASSERT_NE(at, npos) << screen(t);
    for (const char* message : {"sing\r", "sing again\r"}) {
        t.send(message);
        at = t.wait_for("\x1b[2mla", at);  // the reasoning has started, dimmed
        ASSERT_NE(at, npos) << screen(t);
        at = t.wait_for("lalalalala", at);
        ASSERT_NE(at, npos) << screen(t);
        t.send("\x03");  // Ctrl-C, mid-answer
        const size_t stopped = t.wait_for("[stopped]", at);
        ASSERT_NE(stopped, npos) << screen(t);
        // The dim style was ended before the notice, and the prompt came back.
        const size_t reset = t.output().find("\x1b[0m", at);
        EXPECT_LT(reset, stopped) << screen(t);
        at = t.wait_for("> ", stopped);
        ASSERT_NE(at, npos) << screen(t);
    }
    t.send("/exit\r");
    EXPECT_EQ(t.wait_exit(), 0) << screen(t);
}

}  // namespace
}  // namespace strata
