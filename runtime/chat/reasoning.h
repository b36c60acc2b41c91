// Separates a reasoning model's thinking from its answer while the text streams in.
//
// The model writes "<think>\n…reasoning…\n</think>\n\n…answer…". R1's generation prompt already
// opened the block, so its output starts inside the reasoning; Qwen3 writes "<think>" itself.
// The tags arrive as text, whole or in pieces spread over several tokens ("</", "think", ">\n\n"),
// and a piece that may be the start of a tag is held back until the next text decides.
//
// What comes out is meant to be shown: the tags are gone, and each part is trimmed of the blank
// lines around it (whitespace at its start is dropped, whitespace at its end is held until more
// text of the same part follows).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::chat {

enum class Channel : uint8_t { kReasoning, kAnswer };

struct Span {
    Channel channel;
    std::string text;
};

class ReasoningSplitter {
  public:
    // `in_reasoning`: the prompt opened a <think> block (ChatTemplate::opens_reasoning).
    explicit ReasoningSplitter(bool in_reasoning);

    // Text decoded from the next token(s); appends to `out` what can be shown now (adjacent
    // pieces of one channel may come as separate spans).
    void push(std::string_view text, std::vector<Span>& out);
    // The end of the turn: text held back because it could have started a tag is shown after all.
    void finish(std::vector<Span>& out);

    // Where the next text goes.
    Channel channel() const { return channel_; }
    // Whether </think> was seen (the reasoning is over).
    bool reasoning_closed() const { return closed_; }

  private:
    void emit(Channel channel, std::string_view text, std::vector<Span>& out);
    void switch_to(Channel channel);

    Channel channel_;
    bool closed_ = false;
    // Whether the answer may still open a <think> block: only before any of it was shown, and
    // never after a block was closed.
    bool may_open_;
    bool at_start_ = true;  // nothing shown yet in the current channel: drop whitespace
    std::string held_;      // the start of a tag, not yet decided
    std::string spaces_;    // whitespace held at the end of the current channel
};

}  // namespace strata::chat
