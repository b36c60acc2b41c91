// Added tokens written in the text (chat markers, <think>, ...): found before any normalization,
// leftmost first and, at one position, the longest, as Hugging Face's added-token splitter does.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::tokenizer {

class AddedTokenMatcher {
  public:
    AddedTokenMatcher();

    // `control`: the token is matched only when special-token parsing is on. A text added twice
    // keeps its first id. Empty texts are ignored.
    void add(std::string_view text, int32_t id, bool control);

    struct Match {
        size_t pos = 0;
        size_t len = 0;  // 0: no match
        int32_t id = -1;
    };
    // The leftmost match in text[from..], longest at its position.
    Match find(std::string_view text, size_t from, bool include_control) const;

  private:
    // A byte trie. The root's children are a direct table so that most text bytes are rejected
    // with one load; deeper nodes have few children and search them linearly.
    struct Node {
        std::vector<std::pair<uint8_t, int32_t>> children;  // (byte, node index)
        int32_t id = -1;                                    // token ending here, or -1
        bool control = false;
    };
    int32_t child(int32_t node, uint8_t b) const;

    std::array<int32_t, 256> root_{};  // byte → node index, or -1
    std::vector<Node> nodes_;          // (trie nodes below the root)
};

}  // namespace strata::tokenizer
