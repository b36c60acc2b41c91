#include "runtime/chat/turn.h"

namespace strata::chat {

TurnStream::TurnStream(const tokenizer::Tokenizer& tokenizer, const TurnOptions& options)
    : tokenizer_(tokenizer),
      decoder_(tokenizer, tokenizer::Control::kSkip),
      stops_(options.stops),
      splitter_(options.in_reasoning),
      prompt_opened_(options.in_reasoning) {
    // Some files type <think> as a control token, which the decoder leaves out; the tags must
    // reach the splitter whatever their type.
    if (const auto id = tokenizer.find_token("<think>")) think_open_ = *id;
    if (const auto id = tokenizer.find_token("</think>")) think_close_ = *id;
}

void TurnStream::forward(std::string_view text, std::vector<Span>& out) {
    const std::string passed = stops_.push(text);
    text_ += passed;
    splitter_.push(passed, out);
}

bool TurnStream::push(int32_t id, std::vector<Span>& out) {
    if (end_ != TurnEnd::kNone) return true;
    ++n_tokens_;
    if (tokenizer_.is_eog(id)) {
        finish(TurnEnd::kEndOfTurn, out);
        return true;
    }
    const bool tag = id == think_open_ || id == think_close_;
    forward(tag ? decoder_.push_bytes(tokenizer_.token_bytes(id)) : decoder_.push(id), out);
    if (stops_.matched()) {
        finish(TurnEnd::kStopString, out);
        return true;
    }
    return false;
}

void TurnStream::finish(TurnEnd why, std::vector<Span>& out) {
    if (end_ != TurnEnd::kNone) return;
    end_ = why;
    if (!stops_.matched()) {
        forward(decoder_.flush(), out);
        const std::string rest = stops_.finish();
        text_ += rest;
        splitter_.push(rest, out);
    }
    splitter_.finish(out);
}

std::string TurnStream::history_text() const {
    std::string out = prompt_opened_ ? "<think>\n" + text_ : text_;
    if (splitter_.channel() == Channel::kReasoning) out += "\n</think>\n\n";
    return out;
}

}  // namespace strata::chat
