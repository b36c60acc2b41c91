// The reasoning splitter and stop strings on streamed text: every case is fed whole, cut in two at
// every byte, one byte at a time, and in random pieces; what comes out must not depend on how the
// text was cut.
#include <gtest/gtest.h>

#include <random>

#include "runtime/chat/reasoning.h"
#include "runtime/chat/stop_strings.h"
#include "runtime/error.h"

namespace strata::chat {
namespace {

// The ways of cutting a text into pieces that every case is run with.
std::vector<std::vector<std::string>> cuttings(const std::string& text, uint64_t seed) {
    std::vector<std::vector<std::string>> out;
    out.push_back({text});
    for (size_t cut = 0; cut <= text.size(); ++cut)
        out.push_back({text.substr(0, cut), text.substr(cut)});
    std::vector<std::string> bytes;
    for (const char c : text) bytes.emplace_back(1, c);
    out.push_back(bytes);
    std::mt19937_64 rng(seed);
    for (int r = 0; r < 20; ++r) {
        std::vector<std::string> pieces;
        for (size_t i = 0; i < text.size();) {
            const size_t n = std::uniform_int_distribution<size_t>(0, 5)(rng);
            pieces.push_back(text.substr(i, n));
            i += n;
        }
        out.push_back(pieces);
    }
    return out;
}

struct Split {
    std::string reasoning, answer;
    bool reasoning_after_answer = false;  // a reasoning span came after an answer span
};

Split split(bool in_reasoning, const std::vector<std::string>& pieces, bool* closed = nullptr) {
    ReasoningSplitter s(in_reasoning);
    std::vector<Span> spans;
    for (const std::string& p : pieces) s.push(p, spans);
    s.finish(spans);
    Split out;
    bool seen_answer = false;
    for (const Span& span : spans) {
        EXPECT_FALSE(span.text.empty());
        if (span.channel == Channel::kReasoning) {
            out.reasoning += span.text;
            out.reasoning_after_answer |= seen_answer;
        } else {
            out.answer += span.text;
            seen_answer = true;
        }
    }
    if (closed) *closed = s.reasoning_closed();
    return out;
}

struct SplitCase {
    bool in_reasoning;
    std::string text, reasoning, answer;
};

TEST(ReasoningSplitter, SeparatesReasoningFromAnswerHoweverTheTextIsCut) {
    const SplitCase cases[] = {
        // The prompt opened <think> (R1).
        {true, "Let me think.\n</think>\n\nThe answer is 4.", "Let me think.", "The answer is 4."},
        {true, "a </thi b</think>c", "a </thi b", "c"},
        {true, "a </THINK> <think> b", "a </THINK> <think> b", ""},
        {true, "no close tag, ends with <", "no close tag, ends with <", ""},
        {true, "ends with a partial </thin", "ends with a partial </thin", ""},
        {true, "r</think>a</think>b", "r", "a</think>b"},
        {true, "\n\n  r  \n</think>\n\n  a  \n", "r", "a"},
        {true, "r1\n\n r2\n</think>a1\n\na2", "r1\n\n r2", "a1\n\na2"},
        {true, "</think>only an answer", "", "only an answer"},
        {true, "思考する</think>答え。", "思考する", "答え。"},
        // The model opens the block itself (Qwen3), or does not reason.
        {false, "<think>\nR\n</think>\n\nA", "R", "A"},
        {false, " \n\t<think>R</think>A", "R", "A"},
        {false, "<think></think>\n\nA", "", "A"},
        {false, "A <think>x</think>", "", "A <think>x</think>"},
        {false, "<thinking>", "", "<thinking>"},
        {false, "<thin", "", "<thin"},
        {false, "\n<", "", "<"},
        {false, "plain answer\n", "", "plain answer"},
        {false, "</think>A", "", "</think>A"},
        {false, "<think>never closed <", "never closed <", ""},
        {false, "<think>a</think><think>b</think>c", "a", "<think>b</think>c"},
        {false, "", "", ""},
    };
    uint64_t seed = 1;
    for (const SplitCase& c : cases) {
        for (const auto& pieces : cuttings(c.text, seed++)) {
            const Split got = split(c.in_reasoning, pieces);
            std::string where = "text \"" + c.text + "\" in pieces:";
            for (const std::string& p : pieces) where += " [" + p + "]";
            ASSERT_EQ(got.reasoning, c.reasoning) << where;
            ASSERT_EQ(got.answer, c.answer) << where;
            ASSERT_FALSE(got.reasoning_after_answer) << where;
        }
    }
}

TEST(ReasoningSplitter, HoldsOnlyWhatMayBeATag) {
    ReasoningSplitter s(true);
    std::vector<Span> spans;
    s.push("step one </", spans);
    ASSERT_EQ(spans.size(), 1u);
    EXPECT_EQ(spans[0].text, "step one");  // the space waits for more reasoning text
    spans.clear();
    s.push("think", spans);
    EXPECT_TRUE(spans.empty());
    EXPECT_EQ(s.channel(), Channel::kReasoning);
    s.push(">\n\nDone", spans);
    EXPECT_EQ(s.channel(), Channel::kAnswer);
    EXPECT_TRUE(s.reasoning_closed());
    ASSERT_EQ(spans.size(), 1u);
    EXPECT_EQ(spans[0].channel, Channel::kAnswer);
    EXPECT_EQ(spans[0].text, "Done");

    // Text that cannot start a tag is shown at once.
    ReasoningSplitter t(true);
    spans.clear();
    t.push("a<b", spans);
    ASSERT_EQ(spans.size(), 1u);
    EXPECT_EQ(spans[0].text, "a<b");
}

TEST(ReasoningSplitter, ReportsWhetherTheBlockWasClosed) {
    bool closed = true;
    split(true, {"still thinking"}, &closed);
    EXPECT_FALSE(closed);
    split(false, {"<think>x</think>y"}, &closed);
    EXPECT_TRUE(closed);
    split(false, {"no reasoning"}, &closed);
    EXPECT_FALSE(closed);
}

// ---------------------------------------------------------------------------------------------

struct StopCase {
    std::vector<std::string> stops;
    std::string text, passed;
    bool matched;
    std::string match;
};

TEST(StopStrings, CutsAtTheFirstStopStringHoweverTheTextIsCut) {
    const StopCase cases[] = {
        {{"###"}, "abc##d###e", "abc##d", true, "###"},
        {{"###"}, "abc##", "abc##", false, ""},
        {{"STOP", "TO"}, "xSTOP", "x", true, "STOP"},
        {{"TO", "xST"}, "axSTOP", "a", true, "xST"},
        {{"ab", "abc"}, "zabc", "z", true, "abc"},
        {{"ab", "abc"}, "zabd", "z", true, "ab"},
        {{"aab"}, "aaab", "a", true, "aab"},
        {{"aab"}, "aaaa", "aaaa", false, ""},
        {{"\n\nUser:"}, "Sure.\n\nUs\n\nUser: hi", "Sure.\n\nUs", true, "\n\nUser:"},
        {{"。\n"}, "一。二。\n三", "一。二", true, "。\n"},
        {{"x"}, "x", "", true, "x"},
        {{}, "anything", "anything", false, ""},
    };
    uint64_t seed = 100;
    for (const StopCase& c : cases) {
        for (const auto& pieces : cuttings(c.text, seed++)) {
            StopStrings stops(c.stops);
            std::string passed;
            for (const std::string& p : pieces) passed += stops.push(p);
            passed += stops.finish();
            std::string where = "text \"" + c.text + "\" in pieces:";
            for (const std::string& p : pieces) where += " [" + p + "]";
            ASSERT_EQ(passed, c.passed) << where;
            ASSERT_EQ(stops.matched(), c.matched) << where;
            ASSERT_EQ(stops.match(), c.match) << where;
        }
    }
}

TEST(StopStrings, HoldsBackOnlyAPossibleStart) {
    StopStrings stops({"</answer>"});
    EXPECT_EQ(stops.push("the end </ans"), "the end ");
    EXPECT_EQ(stops.push("wer is near"), "</answer is near");
    EXPECT_FALSE(stops.matched());
    EXPECT_EQ(stops.push(" </answer> and more"), " ");
    EXPECT_TRUE(stops.matched());
    EXPECT_EQ(stops.push("ignored"), "");
    EXPECT_EQ(stops.finish(), "");
}

TEST(StopStrings, RefusesAnEmptyStopString) {
    EXPECT_THROW(StopStrings({"ok", ""}), UsageError);
}

}  // namespace
}  // namespace strata::chat
