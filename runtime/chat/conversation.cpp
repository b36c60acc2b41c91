#include "runtime/chat/conversation.h"

namespace strata::chat {

Conversation::Conversation(ChatTemplate tmpl, std::string system, bool system_as_is)
    : tmpl_(std::move(tmpl)), system_(std::move(system)), system_as_is_(system_as_is) {}

void Conversation::add_user(std::string text) {
    turns_.push_back({Role::kUser, std::move(text)});
}

void Conversation::add_assistant(std::string text) {
    turns_.push_back({Role::kAssistant, std::move(text)});
}

void Conversation::drop_last() {
    if (!turns_.empty()) turns_.pop_back();
}

void Conversation::clear() {
    turns_.clear();
}

bool Conversation::folds_system() const {
    return !system_.empty() && !system_as_is_ && tmpl_.prefers_system_in_user_turn();
}

std::vector<Message> Conversation::messages() const {
    std::vector<Message> all;
    all.reserve(turns_.size() + 1);
    if (!system_.empty()) all.push_back({Role::kSystem, system_});
    all.insert(all.end(), turns_.begin(), turns_.end());
    return all;
}

std::string Conversation::prompt() const {
    const std::vector<Message> all = messages();
    if (folds_system()) return tmpl_.render(fold_system_into_user(all), true);
    return tmpl_.render(all, true);
}

}  // namespace strata::chat
