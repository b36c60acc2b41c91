// The conversation so far and how it is written for the model: its template, the system prompt
// (folded into the first user turn for R1 unless asked otherwise), the turns.
#pragma once

#include <string>
#include <vector>

#include "runtime/chat/template.h"

namespace strata::chat {

class Conversation {
  public:
    // `system`: the system prompt, empty for none. `system_as_is`: write it where the template
    // puts a system prompt even when the family's model card advises against one (--system-as-is).
    Conversation(ChatTemplate tmpl, std::string system, bool system_as_is);

    void add_user(std::string text);
    // An answer as TurnStream::history_text gives it (reasoning included; the template decides
    // what of it the model sees again).
    void add_assistant(std::string text);
    // Removes the last turn (a user turn that did not fit in the context).
    void drop_last();
    // Forgets every turn; the system prompt stays.
    void clear();

    // The text to evaluate before the next answer: every turn, then the generation prompt.
    std::string prompt() const;
    // The messages given to the template, the system prompt first (before any folding).
    std::vector<Message> messages() const;
    size_t n_turns() const { return turns_.size(); }
    const ChatTemplate& tmpl() const { return tmpl_; }
    // Whether the system prompt is written into the first user turn.
    bool folds_system() const;

  private:
    ChatTemplate tmpl_;
    std::string system_;
    bool system_as_is_;
    std::vector<Message> turns_;  // user and assistant turns, in order
};

}  // namespace strata::chat
