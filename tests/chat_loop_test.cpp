// The chat loop end to end with a scripted token source: the same code `strata run --chat` runs
// between the sampler and the screen — templates, prefix reuse across turns, the reasoning shown
// apart, stop strings, limits, Ctrl-C during an answer and at the prompt, /reset and /exit.
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <thread>

#include "runtime/chat/chat_loop.h"
#include "tests/tokenizer_test_util.h"

namespace strata::chat {
namespace {

// A TokenSource that plays back one script of tokens per answer and keeps the context as a cache
// would, so that what each turn prefills can be checked.
class ScriptedSource : public TokenSource {
  public:
    int64_t ctx = 4096;
    std::deque<std::vector<int32_t>> scripts;   // one per answer, in order
    int32_t filler = -1;                        // sampled once a script runs out (-1: fail)
    std::function<void(size_t)> on_sample;      // called with the index of each sample in a turn
    std::vector<int32_t> context;               // what the cache holds
    std::vector<std::vector<int32_t>> prompts;  // every prefill
    std::vector<int64_t> kept;                  // tokens kept by every prefill
    int resets = 0;

    int64_t n_ctx() const override { return ctx; }
    int64_t n_past() const override { return static_cast<int64_t>(context.size()); }
    int64_t prefill(std::span<const int32_t> tokens) override {
        size_t common = 0;
        while (common < context.size() && common < tokens.size() &&
               context[common] == tokens[common])
            ++common;
        context.assign(tokens.begin(), tokens.end());
        prompts.emplace_back(tokens.begin(), tokens.end());
        kept.push_back(static_cast<int64_t>(common));
        if (!scripts.empty()) {
            current_ = std::move(scripts.front());
            scripts.pop_front();
        } else {
            current_.clear();
        }
        pos_ = 0;
        return static_cast<int64_t>(common);
    }
    int32_t sample() override {
        if (on_sample) on_sample(pos_);
        if (pos_ < current_.size()) return current_[pos_++];
        ++pos_;
        EXPECT_GE(filler, 0) << "the script ran out";
        return filler < 0 ? 0 : filler;
    }
    void append(int32_t id) override {
        EXPECT_LT(n_past(), ctx);
        context.push_back(id);
    }
    void reset() override {
        context.clear();
        ++resets;
    }

  private:
    std::vector<int32_t> current_;
    size_t pos_ = 0;
};

// A FILE* whose contents can be read back.
class Capture {
  public:
    Capture() : file_(open_memstream(&buf_, &size_)) {}
    ~Capture() {
        std::fclose(file_);
        std::free(buf_);
    }
    std::FILE* file() { return file_; }
    std::string text() {
        std::fflush(file_);
        return std::string(buf_, size_);
    }

  private:
    char* buf_ = nullptr;
    size_t size_ = 0;
    std::FILE* file_;
};

// The golden DeepSeek-V3 vocabulary with R1's template, as for an R1 model.
struct R1Fixture {
    const tokenizer::Tokenizer& tok = test::golden_tokenizer("deepseek-v3");
    ChatTemplate tmpl{Family::kDeepSeekR1, "<｜begin▁of▁sentence｜>"};

    std::vector<int32_t> answer(const std::string& text, bool eos = true) const {
        std::vector<int32_t> ids = tok.encode(text, false);
        if (eos) ids.push_back(tok.eos());
        return ids;
    }
    std::vector<int32_t> encode(const std::string& text) const {
        return tok.encode(text, false, true);
    }
};

TEST(ChatLoop, TwoTurnsShowReasoningApartAndReuseTheCache) {
    STRATA_REQUIRE_GOLDEN();
    R1Fixture f;
    ScriptedSource source;
    source.scripts = {f.answer("Add them.\n</think>\n\n2 + 2 = 4."),
                      f.answer("Again.\n</think>\n\n3 + 3 = 6.")};
    Conversation conv(f.tmpl, "Be brief.", false);
    ChatLoop loop(source, f.tok, conv, {}, nullptr);
    Capture out;

    conv.add_user("2+2?");
    TurnStats s1 = loop.answer(out.file());
    EXPECT_EQ(s1.end, TurnEnd::kEndOfTurn);
    EXPECT_EQ(s1.reused, 0);
    // The system prompt went into the first user turn, and the prompt opened <think>.
    EXPECT_EQ(
        source.prompts[0],
        f.encode("<｜begin▁of▁sentence｜><｜User｜>Be brief.\n\n2+2?<｜Assistant｜><think>\n"));
    EXPECT_EQ(s1.prompt_tokens, static_cast<int64_t>(source.prompts[0].size()));

    conv.add_user("3+3?");
    TurnStats s2 = loop.answer(out.file());
    EXPECT_EQ(s2.end, TurnEnd::kEndOfTurn);
    // The first answer comes back without its reasoning; the cache is kept up to where the two
    // prompts part: the first answer's opening.
    EXPECT_EQ(
        source.prompts[1],
        f.encode("<｜begin▁of▁sentence｜><｜User｜>Be brief.\n\n2+2?<｜Assistant｜>\n\n2 + 2 = "
                 "4.<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><think>\n"));
    EXPECT_EQ(
        s2.reused,
        static_cast<int64_t>(
            f.encode("<｜begin▁of▁sentence｜><｜User｜>Be brief.\n\n2+2?<｜Assistant｜>").size()));
    EXPECT_EQ(out.text(),
              "<think>\nAdd them.\n</think>\n\n2 + 2 = 4.\n"
              "<think>\nAgain.\n</think>\n\n3 + 3 = 6.\n");
    EXPECT_EQ(conv.n_turns(), 4u);
}

TEST(ChatLoop, ColourDimsTheReasoningAndHiddenReasoningLeavesTheAnswer) {
    STRATA_REQUIRE_GOLDEN();
    R1Fixture f;
    const auto run = [&](DisplayOptions display) {
        ScriptedSource source;
        source.scripts = {f.answer("Hmm.\n</think>\n\nYes.")};
        Conversation conv(f.tmpl, "", false);
        conv.add_user("Q?");
        ChatLoop loop(source, f.tok, conv, {.stops = {}, .max_tokens = -1, .display = display},
                      nullptr);
        Capture out;
        loop.answer(out.file());
        return out.text();
    };
    EXPECT_EQ(run({.color = true, .hide_reasoning = false}), "\x1b[2mHmm.\x1b[0m\n\nYes.\n");
    EXPECT_EQ(run({.color = false, .hide_reasoning = true}), "Yes.\n");
    EXPECT_EQ(run({.color = true, .hide_reasoning = true}),
              "\x1b[2mthinking…\x1b[0m\r\x1b[KYes.\n");
}

TEST(ChatLoop, StopStringsAndTheTokenLimitEndAnAnswer) {
    STRATA_REQUIRE_GOLDEN();
    R1Fixture f;
    ScriptedSource source;
    source.scripts = {f.answer("ok</think>The end. STOP here", false), f.answer("a b c d e f g h")};
    Conversation conv(f.tmpl, "", false);
    ChatLoop loop(source, f.tok, conv, {.stops = {"STOP"}, .max_tokens = 3, .display = {}},
                  nullptr);
    Capture out;
    conv.add_user("one");
    TurnStats s =
        ChatLoop(source, f.tok, conv, {.stops = {"STOP"}, .max_tokens = -1, .display = {}}, nullptr)
            .answer(out.file());
    EXPECT_EQ(s.end, TurnEnd::kStopString);
    EXPECT_EQ(conv.messages().back().content, "<think>\nok</think>The end. ");
    conv.add_user("two");
    s = loop.answer(out.file());
    EXPECT_EQ(s.end, TurnEnd::kLength);
    EXPECT_EQ(s.generated, 3);
    EXPECT_EQ(out.text(), "<think>\nok\n</think>\n\nThe end.\n<think>\na b c\n</think>\n");
}

TEST(ChatLoop, AConversationThatDoesNotFitIsRefusedAndAFullContextEndsTheAnswer) {
    STRATA_REQUIRE_GOLDEN();
    R1Fixture f;
    ScriptedSource source;
    Conversation conv(f.tmpl, "", false);
    const int64_t prompt_size = static_cast<int64_t>(
        f.encode("<｜begin▁of▁sentence｜><｜User｜>hello<｜Assistant｜><think>\n").size());
    source.ctx = prompt_size;  // no room for an answer
    ChatLoop loop(source, f.tok, conv, {}, nullptr);
    Capture out;
    conv.add_user("hello");
    TurnStats s = loop.answer(out.file());
    EXPECT_TRUE(s.did_not_fit);
    EXPECT_EQ(s.prompt_tokens, prompt_size);
    EXPECT_EQ(conv.n_turns(), 0u);  // the user turn was taken back
    EXPECT_TRUE(source.prompts.empty());

    source.ctx = prompt_size + 2;
    source.filler = f.tok.encode("la", false)[0];
    const std::string la(f.tok.token_bytes(source.filler));
    conv.add_user("hello");
    s = loop.answer(out.file());
    EXPECT_FALSE(s.did_not_fit);
    EXPECT_EQ(s.end, TurnEnd::kContextFull);
    EXPECT_EQ(source.n_past(), source.ctx);
    EXPECT_EQ(s.generated, 3);  // two appended, the third had no room
    EXPECT_EQ(out.text(), "<think>\n" + la + la + la + "\n</think>\n");
}

TEST(ChatLoop, CtrlCStopsTheAnswerAndTheConversationGoesOn) {
    STRATA_REQUIRE_GOLDEN();
    R1Fixture f;
    ScriptedSource source;
    source.filler = f.tok.encode("la", false)[0];
    const std::string la5 = [&] {
        std::string s;
        for (int i = 0; i < 5; ++i) s += f.tok.token_bytes(source.filler);
        return s;
    }();
    source.scripts = {{}, f.answer("fine</think>Done.")};
    InterruptHandler interrupts;
    bool armed = true;
    source.on_sample = [&](size_t i) {
        if (armed && i == 4) {
            armed = false;
            std::raise(SIGINT);  // as if Ctrl-C were pressed while the fifth token is chosen
        }
    };
    Conversation conv(f.tmpl, "", false);
    ChatLoop loop(source, f.tok, conv, {}, &interrupts);
    Capture out;
    conv.add_user("sing");
    TurnStats s = loop.answer(out.file());
    EXPECT_EQ(s.end, TurnEnd::kInterrupted);
    EXPECT_EQ(s.generated, 5);
    EXPECT_FALSE(interrupts.pending());
    // The cut reasoning is closed in the history, so that the template drops it next time.
    EXPECT_EQ(conv.messages().back().content, "<think>\n" + la5 + "\n</think>\n\n");
    conv.add_user("again");
    s = loop.answer(out.file());
    EXPECT_EQ(s.end, TurnEnd::kEndOfTurn);
    EXPECT_EQ(out.text(), "<think>\n" + la5 + "\n</think>\n<think>\nfine\n</think>\n\nDone.\n");
    EXPECT_EQ(
        source.prompts[1],
        f.encode("<｜begin▁of▁sentence｜><｜User｜>sing<｜Assistant｜>\n\n<｜end▁of▁sentence｜>"
                 "<｜User｜>again<｜Assistant｜><think>\n"));
}

// A pipe that the session reads as its standard input.
class InputPipe {
  public:
    InputPipe() { EXPECT_EQ(::pipe(fds_), 0); }
    ~InputPipe() {
        ::close(fds_[0]);
        close_writer();
    }
    void write(std::string_view s) {
        EXPECT_EQ(::write(fds_[1], s.data(), s.size()), static_cast<ssize_t>(s.size()));
    }
    void close_writer() {
        if (fds_[1] >= 0) ::close(fds_[1]);
        fds_[1] = -1;
    }
    int reader() const { return fds_[0]; }

  private:
    int fds_[2] = {-1, -1};
};

TEST(ChatLoop, InteractiveSessionWithResetAndExit) {
    STRATA_REQUIRE_GOLDEN();
    R1Fixture f;
    ScriptedSource source;
    source.scripts = {f.answer("r1</think>A1"), f.answer("r2</think>A2"), f.answer("r3</think>A3")};
    Conversation conv(f.tmpl, "", false);
    ChatLoop loop(source, f.tok, conv, {}, nullptr);
    InputPipe in;
    in.write("first\n\n   \n/help\nsecond\n /reset \nthird\n/exit\nnever read\n");
    in.close_writer();
    LineReader reader(in.reader(), nullptr);
    Capture out, err;
    loop.interact(reader, out.file(), err.file(), true);

    EXPECT_EQ(out.text(),
              "> <think>\nr1\n</think>\n\nA1\n> > > > <think>\nr2\n</think>\n\nA2\n> "
              "> <think>\nr3\n</think>\n\nA3\n> ");
    EXPECT_EQ(err.text(), ChatLoop::banner() + "\n(new conversation)\n");
    EXPECT_EQ(source.resets, 1);
    ASSERT_EQ(source.prompts.size(), 3u);
    // The second turn carries the first; after /reset the third starts afresh.
    EXPECT_EQ(
        source.prompts[1],
        f.encode("<｜begin▁of▁sentence｜><｜User｜>first<｜Assistant｜>A1<｜end▁of▁sentence｜>"
                 "<｜User｜>second<｜Assistant｜><think>\n"));
    EXPECT_EQ(source.prompts[2],
              f.encode("<｜begin▁of▁sentence｜><｜User｜>third<｜Assistant｜><think>\n"));
    EXPECT_EQ(source.kept[2], 0);
    EXPECT_EQ(conv.n_turns(), 2u);
}

TEST(ChatLoop, EndOfInputEndsTheSession) {
    STRATA_REQUIRE_GOLDEN();
    R1Fixture f;
    ScriptedSource source;
    source.scripts = {f.answer("r</think>A")};
    Conversation conv(f.tmpl, "", false);
    ChatLoop loop(source, f.tok, conv, {}, nullptr);
    InputPipe in;
    in.write("question without newline");
    in.close_writer();
    LineReader reader(in.reader(), nullptr);
    Capture out, err;
    loop.interact(reader, out.file(), err.file(), false);
    EXPECT_EQ(out.text(), "<think>\nr\n</think>\n\nA\n");
    EXPECT_EQ(conv.messages().front().content, "question without newline");
}

TEST(ChatLoop, CtrlCTwiceAtThePromptQuits) {
    STRATA_REQUIRE_GOLDEN();
    R1Fixture f;
    ScriptedSource source;
    Conversation conv(f.tmpl, "", false);
    InterruptHandler interrupts;
    ChatLoop loop(source, f.tok, conv, {}, &interrupts);
    InputPipe in;  // stays open and empty: the session waits at the prompt
    LineReader reader(in.reader(), &interrupts);
    Capture out, err;
    const pthread_t session = pthread_self();
    std::thread keyboard([&] {
        // Each Ctrl-C goes to the session's thread (to interrupt its read), and the second only
        // once the first was taken: two untaken ones would end the process.
        ::usleep(50'000);
        pthread_kill(session, SIGINT);
        while (interrupts.pending()) ::usleep(1'000);
        ::usleep(50'000);
        pthread_kill(session, SIGINT);
    });
    loop.interact(reader, out.file(), err.file(), true);
    keyboard.join();
    EXPECT_EQ(out.text(), "> \n> \n");
    EXPECT_EQ(err.text(), "(Ctrl-C again, /exit or Ctrl-D to quit)\n");
    EXPECT_TRUE(source.prompts.empty());
}

}  // namespace
}  // namespace strata::chat
