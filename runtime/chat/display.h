// Writes an answer as it streams, with the reasoning apart from it:
//   terminal (colour)  reasoning dimmed, a blank line, then the answer;
//   plain              "<think>\n" reasoning "\n</think>\n\n" then the answer, the form the
//                      model itself writes, which tools that read its output understand;
//   hide_reasoning     the answer only (a terminal shows a dim "thinking…" meanwhile).
#pragma once

#include <cstdio>
#include <vector>

#include "runtime/chat/reasoning.h"

namespace strata::chat {

struct DisplayOptions {
    bool color = false;           // ANSI styles (use_color(stdout))
    bool hide_reasoning = false;  // --hide-reasoning
};

class TurnDisplay {
  public:
    TurnDisplay(std::FILE* out, DisplayOptions options);

    // Writes the spans and flushes.
    void show(const std::vector<Span>& spans);
    // Closes the reasoning if it is still open and ends the line; then the display is ready for
    // the next turn.
    void end();

  private:
    enum class State { kNothing, kReasoning, kAnswer };
    void write(std::string_view text);
    void leave_reasoning();

    std::FILE* out_;
    DisplayOptions options_;
    State state_ = State::kNothing;
};

}  // namespace strata::chat
