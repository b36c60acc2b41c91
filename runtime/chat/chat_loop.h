// The chat itself: answers a conversation's last user turn token by token, and runs the
// interactive session around it (prompt, /reset, /exit, Ctrl-C).
//
// Tokens come from a TokenSource — a Session and a Sampler in `strata run --chat`, a script in
// the tests — so that everything between the sampler and the screen is the same code in both.
// The whole conversation is rendered again for every turn and prefilled; the source keeps the
// longest prefix its cache already holds (Session::prefill), so in practice only the new turn
// (and the previous answer, whose reasoning the template drops) is evaluated.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "runtime/chat/conversation.h"
#include "runtime/chat/display.h"
#include "runtime/chat/terminal.h"
#include "runtime/chat/turn.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata::chat {

class TokenSource {
  public:
    virtual ~TokenSource() = default;
    virtual int64_t n_ctx() const = 0;
    virtual int64_t n_past() const = 0;
    // Makes the context exactly `tokens`, keeping what the cache shares with them; returns how
    // many tokens were kept.
    virtual int64_t prefill(std::span<const int32_t> tokens) = 0;
    // The next token, chosen from the logits after the last token of the context.
    virtual int32_t sample() = 0;
    // Appends a chosen token to the context (n_past() < n_ctx()).
    virtual void append(int32_t id) = 0;
    // Forgets the context (/reset).
    virtual void reset() = 0;
};

struct ChatOptions {
    std::vector<std::string> stops;  // --stop
    int64_t max_tokens = -1;         // per answer (-n); negative: until the context is full
    DisplayOptions display;
};

struct TurnStats {
    TurnEnd end = TurnEnd::kNone;
    int64_t prompt_tokens = 0;  // the whole rendered conversation
    int64_t reused = 0;         // of which were already in the cache
    int64_t generated = 0;      // tokens sampled, the end-of-turn token included
    double prefill_s = 0.0;
    double generate_s = 0.0;
    bool did_not_fit = false;  // the conversation alone fills the context: nothing was generated
};

class ChatLoop {
  public:
    // `interrupts` may be null (no Ctrl-C handling).
    ChatLoop(TokenSource& source, const tokenizer::Tokenizer& tokenizer, Conversation& conversation,
             ChatOptions options, InterruptHandler* interrupts);

    // Answers the conversation's last user turn: prefills, generates until the turn ends, shows
    // it on `out` as it comes and adds the answer to the conversation. When the conversation does
    // not fit in the context, nothing is generated, the user turn is removed and did_not_fit set.
    TurnStats answer(std::FILE* out);

    // The interactive session: reads lines from `in` until /exit, end of input, or two Ctrl-C in
    // a row at the prompt; every other line is a user turn, answered on `out`. Notices go to
    // `err`. `show_prompt`: write "> " before each line (when the input is a terminal).
    void interact(LineReader& in, std::FILE* out, std::FILE* err, bool show_prompt);

    // The one-line help printed when a session starts.
    static std::string banner();

  private:
    void notice(std::FILE* out, std::FILE* err, std::string_view text) const;

    TokenSource& source_;
    tokenizer::Tokenizer tokenizer_;
    Conversation& conversation_;
    ChatOptions options_;
    InterruptHandler* interrupts_;
};

}  // namespace strata::chat
