#include "runtime/chat/reasoning.h"

#include <algorithm>

namespace strata::chat {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool is_space(char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// The first position p ≥ from where s[p..] is a proper prefix of `tag` (a tag that may be
// completed by the next text), or s.size() when there is none.
size_t partial_tag_start(std::string_view s, size_t from, std::string_view tag) {
    const size_t first = s.size() >= tag.size() ? s.size() - tag.size() + 1 : 0;
    for (size_t p = std::max(from, first); p < s.size(); ++p)
        if (tag.substr(0, s.size() - p) == s.substr(p)) return p;
    return s.size();
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(bool in_reasoning)
    : channel_(in_reasoning ? Channel::kReasoning : Channel::kAnswer), may_open_(!in_reasoning) {}

void ReasoningSplitter::switch_to(Channel channel) {
    channel_ = channel;
    at_start_ = true;
    spaces_.clear();  // whitespace at the end of the part that ends is never shown
}

void ReasoningSplitter::emit(Channel channel, std::string_view text, std::vector<Span>& out) {
    std::string shown;
    for (const char c : text) {
        if (is_space(c)) {
            if (!at_start_) spaces_ += c;
            continue;
        }
        shown += spaces_;
        spaces_.clear();
        shown += c;
        at_start_ = false;
    }
    if (shown.empty()) return;
    if (!out.empty() && out.back().channel == channel)
        out.back().text += shown;
    else
        out.push_back({channel, std::move(shown)});
}

void ReasoningSplitter::push(std::string_view text, std::vector<Span>& out) {
    std::string buf = std::move(held_);
    held_.clear();
    buf.append(text);
    const std::string_view s = buf;
    size_t i = 0;
    while (i < s.size()) {
        if (channel_ == Channel::kReasoning) {
            const size_t close = s.find(kClose, i);
            if (close != std::string_view::npos) {
                emit(Channel::kReasoning, s.substr(i, close - i), out);
                switch_to(Channel::kAnswer);
                closed_ = true;
                may_open_ = false;
                i = close + kClose.size();
                continue;
            }
            const size_t partial = partial_tag_start(s, i, kClose);
            emit(Channel::kReasoning, s.substr(i, partial - i), out);
            held_ = s.substr(partial);
            return;
        }
        if (may_open_) {
            // Only whitespace may come before an opening tag.
            size_t k = i;
            while (k < s.size() && is_space(s[k])) ++k;
            emit(Channel::kAnswer, s.substr(i, k - i), out);  // dropped: nothing shown yet
            i = k;
            if (i == s.size()) return;
            const std::string_view rest = s.substr(i);
            if (rest.substr(0, kOpen.size()) == kOpen) {
                switch_to(Channel::kReasoning);
                may_open_ = false;
                i += kOpen.size();
                continue;
            }
            if (kOpen.substr(0, rest.size()) == rest) {
                held_ = rest;
                return;
            }
            may_open_ = false;
        }
        emit(Channel::kAnswer, s.substr(i), out);
        return;
    }
}

void ReasoningSplitter::finish(std::vector<Span>& out) {
    const std::string rest = std::move(held_);
    held_.clear();
    may_open_ = false;
    emit(channel_, rest, out);
    spaces_.clear();
}

}  // namespace strata::chat
