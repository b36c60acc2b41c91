// Byte-pair encoding over token ids: a piece starts as one byte token per byte, and the adjacent
// pair whose merge has the lowest rank (the leftmost among equals) merges until none is left.
// Working on ids rather than strings is exact because every merge's parts and result are tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace strata::tokenizer {

struct Merge {
    int32_t left = 0;
    int32_t right = 0;
    int32_t result = 0;
};

// Reused buffers of one encode call (encode itself is const and thread-safe).
struct BpeScratch {
    struct Symbol {
        int32_t id;    // token id; -1 once merged into its left neighbour
        int32_t prev;  // index of the previous live symbol, -1 at the start
        int32_t next;  // index of the next live symbol, -1 at the end
    };
    struct Candidate {
        int32_t rank;
        int32_t left;  // symbol index; also the tie-break (leftmost first)
        int32_t right;
        int32_t left_id;
        int32_t right_id;
        int32_t result;
    };
    std::vector<Symbol> symbols;  // (piece bytes)
    std::vector<Candidate> heap;  // min-heap by (rank, left)
};

class Bpe {
  public:
    Bpe() = default;
    // `byte_tokens[b]` is the token of byte b; `merges` are in rank order (rank = index).
    Bpe(const std::array<int32_t, 256>& byte_tokens, const std::vector<Merge>& merges);

    // Appends the tokens of `piece` (non-empty, at most INT32_MAX bytes) to `out`.
    void encode(std::string_view piece, std::vector<int32_t>& out, BpeScratch& scratch) const;

    size_t n_merges() const { return n_merges_; }

  private:
    // Open addressing over (left << 32 | right), linear probing; empty slots hold kEmpty.
    struct Slot {
        uint64_t key;
        int32_t rank;
        int32_t result;
    };
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    static uint64_t key(int32_t left, int32_t right) {
        return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
    }
    const Slot* find(int32_t left, int32_t right) const;
    void push_candidate(BpeScratch& s, int32_t left, int32_t right) const;

    std::array<int32_t, 256> byte_tokens_{};
    std::vector<Slot> slots_;  // (power of two ≥ 2 × merges)
    uint64_t mask_ = 0;
    size_t n_merges_ = 0;
};

}  // namespace strata::tokenizer
