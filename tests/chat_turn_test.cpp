// TurnStream: generated token ids of real vocabularies through decoding, stop strings and the
// reasoning split, as the chat loop feeds them.
#include <gtest/gtest.h>

#include "runtime/chat/turn.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/chat_test_util.h"
#include "tests/tokenizer_test_util.h"

namespace strata::chat {
namespace {

struct Shown {
    std::string reasoning, answer;
};

Shown collect(const std::vector<Span>& spans) {
    Shown s;
    for (const Span& span : spans)
        (span.channel == Channel::kReasoning ? s.reasoning : s.answer) += span.text;
    return s;
}

// Feeds ids until the turn ends; returns what was shown.
Shown feed(TurnStream& turn, const std::vector<int32_t>& ids,
           TurnEnd finish_with = TurnEnd::kLength) {
    std::vector<Span> spans;
    bool ended = false;
    for (const int32_t id : ids) {
        if (turn.push(id, spans)) {
            ended = true;
            break;
        }
    }
    if (!ended) turn.finish(finish_with, spans);
    return collect(spans);
}

TEST(ChatTurn, DeepSeekR1AnswerWithTagsSpreadOverTokens) {
    STRATA_REQUIRE_GOLDEN();
    const auto& tok = test::golden_tokenizer("deepseek-v3");
    const std::string generated = "Two and two.\n</think>\n\nThe answer is 4.";
    std::vector<int32_t> ids = tok.encode(generated, false);
    // The DeepSeek-V3 vocabulary has no <think> token: the tag is several pieces.
    ASSERT_GT(ids.size(), 8u);
    ids.push_back(tok.eos());
    ids.push_back(tok.encode("never seen", false)[0]);

    TurnStream turn(tok, {.in_reasoning = true, .stops = {}});
    const Shown shown = feed(turn, ids);
    EXPECT_EQ(shown.reasoning, "Two and two.");
    EXPECT_EQ(shown.answer, "The answer is 4.");
    EXPECT_EQ(turn.end(), TurnEnd::kEndOfTurn);
    EXPECT_EQ(turn.n_tokens(), static_cast<int64_t>(ids.size()) - 1);  // the EOS counts
    EXPECT_EQ(turn.text(), generated);
    EXPECT_EQ(turn.history_text(), "<think>\n" + generated);
    EXPECT_FALSE(turn.in_reasoning());
}

TEST(ChatTurn, Qwen3WritesItsOwnThinkTokens) {
    STRATA_REQUIRE_GOLDEN();
    const auto& tok = test::golden_tokenizer("qwen2");
    std::vector<int32_t> ids = tok.encode("<think>\nThe user wants x.\n</think>\n\nHere: x", false);
    // <think> and </think> are single (user-defined) tokens here.
    EXPECT_EQ(ids[0], *tok.find_token("<think>"));
    ids.push_back(*tok.find_token("<|im_end|>"));
    TurnStream turn(tok, {.in_reasoning = false, .stops = {}});
    const Shown shown = feed(turn, ids);
    EXPECT_EQ(shown.reasoning, "The user wants x.");
    EXPECT_EQ(shown.answer, "Here: x");
    EXPECT_EQ(turn.end(), TurnEnd::kEndOfTurn);
    EXPECT_EQ(turn.history_text(), "<think>\nThe user wants x.\n</think>\n\nHere: x");
}

TEST(ChatTurn, ThinkTagsTypedAsControlTokensStillSplit) {
    test::TempDir dir;
    const test::ChatVocabFile v{{"<s>", "</s>", "<think>", "</think>", "<|tool|>"}, "", ""};
    const auto tok = tokenizer::Tokenizer::load(v.write(dir));
    const int32_t open = *tok.find_token("<think>"), close = *tok.find_token("</think>");
    ASSERT_EQ(tok.token_type(open), tokenizer::TokenType::kControl);
    const auto bytes = [&](std::string_view s) {
        std::vector<int32_t> ids;
        for (const char c : s) ids.push_back(tok.byte_token(static_cast<uint8_t>(c)));
        return ids;
    };
    std::vector<int32_t> ids = {open};
    for (int32_t id : bytes("hm")) ids.push_back(id);
    ids.push_back(close);
    ids.push_back(*tok.find_token("<|tool|>"));  // other control tokens are not shown
    for (int32_t id : bytes("ok")) ids.push_back(id);
    TurnStream turn(tok, {.in_reasoning = false, .stops = {}});
    const Shown shown = feed(turn, ids);
    EXPECT_EQ(shown.reasoning, "hm");
    EXPECT_EQ(shown.answer, "ok");
    EXPECT_EQ(turn.end(), TurnEnd::kLength);
    EXPECT_EQ(turn.text(), "<think>hm</think>ok");
}

TEST(ChatTurn, CharactersSplitOverByteTokensComeOutWhole) {
    test::TempDir dir;
    const test::ChatVocabFile v{{"<s>", "</s>"}, "", ""};
    const auto tok = tokenizer::Tokenizer::load(v.write(dir));
    const std::string text = "é🙂</think>語";
    std::vector<int32_t> ids;
    for (const char c : text) ids.push_back(tok.byte_token(static_cast<uint8_t>(c)));
    TurnStream turn(tok, {.in_reasoning = true, .stops = {}});
    std::vector<Span> spans;
    for (const int32_t id : ids) {
        const size_t before = spans.size();
        ASSERT_FALSE(turn.push(id, spans));
        for (size_t i = before; i < spans.size(); ++i)
            EXPECT_TRUE(tokenizer::is_valid_utf8(spans[i].text)) << test::escaped(spans[i].text);
    }
    EXPECT_TRUE(turn.push(tok.eos(), spans));
    const Shown shown = collect(spans);
    EXPECT_EQ(shown.reasoning, "é🙂");
    EXPECT_EQ(shown.answer, "語");
    EXPECT_EQ(turn.end(), TurnEnd::kEndOfTurn);
}

TEST(ChatTurn, StopStringAcrossTokensEndsTheTurnUnshown) {
    STRATA_REQUIRE_GOLDEN();
    const auto& tok = test::golden_tokenizer("llama-bpe");
    const std::vector<int32_t> ids = tok.encode("The answer: 42.\nUser: and now?", false);
    TurnStream turn(tok, {.in_reasoning = false, .stops = {"\nUser:", "never"}});
    std::vector<Span> spans;
    size_t pushed = 0;
    for (const int32_t id : ids) {
        ++pushed;
        if (turn.push(id, spans)) break;
    }
    EXPECT_EQ(turn.end(), TurnEnd::kStopString);
    EXPECT_LT(pushed, ids.size());  // it stopped at the stop string, not at the end of the ids
    EXPECT_EQ(collect(spans).answer, "The answer: 42.");
    EXPECT_EQ(turn.text(), "The answer: 42.");
    for (const Span& s : spans) EXPECT_EQ(s.text.find("User"), std::string::npos);
}

TEST(ChatTurn, AnInterruptedReasoningIsClosedInTheHistory) {
    STRATA_REQUIRE_GOLDEN();
    const auto& tok = test::golden_tokenizer("deepseek-v3");
    TurnStream turn(tok, {.in_reasoning = true, .stops = {}});
    const Shown shown = feed(turn, tok.encode("Let me see </thi", false), TurnEnd::kInterrupted);
    EXPECT_EQ(shown.reasoning, "Let me see </thi");
    EXPECT_EQ(shown.answer, "");
    EXPECT_EQ(turn.end(), TurnEnd::kInterrupted);
    EXPECT_TRUE(turn.in_reasoning());
    EXPECT_EQ(turn.history_text(), "<think>\nLet me see </thi\n</think>\n\n");
    // Finishing twice changes nothing.
    std::vector<Span> spans;
    turn.finish(TurnEnd::kLength, spans);
    EXPECT_TRUE(spans.empty());
    EXPECT_EQ(turn.end(), TurnEnd::kInterrupted);
}

}  // namespace
}  // namespace strata::chat
