// One assistant turn as it streams: generated tokens in, text to show out, split into reasoning
// and answer, ended by an end-of-generation token or a stop string.
//
//   token → StreamDecoder (whole UTF-8 only; control tokens left out, <think> tags kept)
//         → StopStrings (held back while a stop string may be starting)
//         → ReasoningSplitter → spans to show
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/chat/reasoning.h"
#include "runtime/chat/stop_strings.h"
#include "runtime/tokenizer/stream_decoder.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata::chat {

// Why a turn ended.
enum class TurnEnd : uint8_t {
    kNone,         // still going
    kEndOfTurn,    // an end-of-generation token (Tokenizer::is_eog)
    kStopString,   // a --stop string
    kLength,       // the token limit (-n)
    kContextFull,  // no room left in the context
    kInterrupted,  // Ctrl-C
};

struct TurnOptions {
    bool in_reasoning = false;       // the prompt opened a <think> block
    std::vector<std::string> stops;  // --stop strings
};

class TurnStream {
  public:
    TurnStream(const tokenizer::Tokenizer& tokenizer, const TurnOptions& options);

    // A generated token: appends what to show now to `out`. Returns true when this token ended
    // the turn (end-of-generation token or stop string); end() says which.
    bool push(int32_t id, std::vector<Span>& out);
    // Ends the turn for a reason of the caller's (length, context, Ctrl-C): shows what was held.
    void finish(TurnEnd why, std::vector<Span>& out);

    TurnEnd end() const { return end_; }
    // The generated text, up to a stop string, with the <think> tags it contains (for the log).
    const std::string& text() const { return text_; }
    // The turn as the conversation history keeps it: the <think> opened by the prompt, then the
    // generated text, with a reasoning block that was cut short closed, so that templates which
    // drop reasoning from earlier turns drop all of it.
    std::string history_text() const;
    int64_t n_tokens() const { return n_tokens_; }
    bool in_reasoning() const { return splitter_.channel() == Channel::kReasoning; }

  private:
    // Decoded text through the stop strings and the splitter.
    void forward(std::string_view text, std::vector<Span>& out);

    tokenizer::Tokenizer tokenizer_;
    tokenizer::StreamDecoder decoder_;
    StopStrings stops_;
    ReasoningSplitter splitter_;
    bool prompt_opened_;
    int32_t think_open_ = -1;  // the vocabulary's <think> / </think> tokens, or -1
    int32_t think_close_ = -1;
    std::string text_;
    int64_t n_tokens_ = 0;
    TurnEnd end_ = TurnEnd::kNone;
};

}  // namespace strata::chat
