#include "runtime/chat/display.h"

#include "runtime/chat/terminal.h"

namespace strata::chat {

TurnDisplay::TurnDisplay(std::FILE* out, DisplayOptions options) : out_(out), options_(options) {}

void TurnDisplay::write(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), out_);
}

// From reasoning to answer: end the dim style, the <think> block or the "thinking…" notice.
void TurnDisplay::leave_reasoning() {
    if (options_.hide_reasoning) {
        if (options_.color) write(kEraseLine);
    } else if (options_.color) {
        write(kSgrReset);
    } else {
        write("\n</think>");
    }
}

void TurnDisplay::show(const std::vector<Span>& spans) {
    for (const Span& span : spans) {
        if (span.channel == Channel::kReasoning) {
            if (state_ != State::kReasoning) {
                if (state_ == State::kAnswer) write("\n\n");
                if (options_.hide_reasoning) {
                    if (options_.color) {
                        write(kSgrDim);
                        write("thinking…");
                        write(kSgrReset);
                    }
                } else {
                    write(options_.color ? kSgrDim : "<think>\n");
                }
                state_ = State::kReasoning;
            }
            if (!options_.hide_reasoning) write(span.text);
        } else {
            if (state_ == State::kReasoning) {
                leave_reasoning();
                if (!options_.hide_reasoning) write("\n\n");
            }
            state_ = State::kAnswer;
            write(span.text);
        }
    }
    std::fflush(out_);
}

void TurnDisplay::end() {
    const bool hidden_only = options_.hide_reasoning && state_ == State::kReasoning;
    if (state_ == State::kReasoning) leave_reasoning();
    // A hidden reasoning erased or never shown leaves nothing on the line to end.
    if (state_ != State::kNothing && !hidden_only) write("\n");
    std::fflush(out_);
    state_ = State::kNothing;
}

}  // namespace strata::chat
