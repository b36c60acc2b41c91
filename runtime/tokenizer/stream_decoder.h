// Streaming detokenizer: turns generated tokens into text as they come, one call per token, and
// never emits a broken UTF-8 sequence. A character whose bytes are spread over several tokens
// (byte tokens, or BPE pieces that split a character) is held until it is complete; bytes that
// can never form a character become U+FFFD.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/tokenizer/tokenizer.h"

namespace strata::tokenizer {

class StreamDecoder {
  public:
    StreamDecoder(Tokenizer tokenizer, Control control)
        : tokenizer_(std::move(tokenizer)), control_(control) {}

    // The text completed by this token: well-formed UTF-8, possibly empty.
    std::string push(int32_t id);
    // The same for raw bytes (what push does with the token's bytes).
    std::string push_bytes(std::string_view bytes);
    // Ends the stream: a character still incomplete becomes U+FFFD. The decoder is then empty
    // and can start a new stream.
    std::string flush();

    // Bytes held back (at most 3: the start of one character).
    size_t pending() const { return pending_.size(); }

  private:
    Tokenizer tokenizer_;
    Control control_;
    std::string pending_;  // (< 4 bytes) an incomplete character awaiting its next bytes
};

}  // namespace strata::tokenizer
