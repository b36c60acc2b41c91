#include "runtime/tokenizer/added_tokens.h"

namespace strata::tokenizer {

AddedTokenMatcher::AddedTokenMatcher() {
    root_.fill(-1);
}

int32_t AddedTokenMatcher::child(int32_t node, uint8_t b) const {
    for (const auto& [byte, index] : nodes_[static_cast<size_t>(node)].children)
        if (byte == b) return index;
    return -1;
}

void AddedTokenMatcher::add(std::string_view text, int32_t id, bool control) {
    if (text.empty()) return;
    int32_t node = -1;
    for (const char ch : text) {
        const auto b = static_cast<uint8_t>(ch);
        int32_t next = node < 0 ? root_[b] : child(node, b);
        if (next < 0) {
            next = static_cast<int32_t>(nodes_.size());
            nodes_.emplace_back();
            if (node < 0)
                root_[b] = next;
            else
                nodes_[static_cast<size_t>(node)].children.emplace_back(b, next);
        }
        node = next;
    }
    Node& end = nodes_[static_cast<size_t>(node)];
    if (end.id < 0) {
        end.id = id;
        end.control = control;
    }
}

AddedTokenMatcher::Match AddedTokenMatcher::find(std::string_view text, size_t from,
                                                 bool include_control) const {
    for (size_t pos = from; pos < text.size(); ++pos) {
        int32_t node = root_[static_cast<uint8_t>(text[pos])];
        Match best{pos, 0, -1};
        for (size_t j = pos; node >= 0;) {
            const Node& n = nodes_[static_cast<size_t>(node)];
            ++j;
            if (n.id >= 0 && (include_control || !n.control)) best = {pos, j - pos, n.id};
            if (j == text.size()) break;
            node = child(node, static_cast<uint8_t>(text[j]));
        }
        if (best.len > 0) return best;
    }
    return {text.size(), 0, -1};
}

}  // namespace strata::tokenizer
