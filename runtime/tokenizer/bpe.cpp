#include "runtime/tokenizer/bpe.h"

#include <algorithm>
#include <bit>

namespace strata::tokenizer {

namespace {

// Fibonacci hashing: the multiply spreads the two ids over the high bits.
uint64_t slot_hash(uint64_t key) {
    return (key * 0x9E3779B97F4A7C15ull) >> 17;
}

bool heap_after(const BpeScratch::Candidate& a, const BpeScratch::Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
}

}  // namespace

Bpe::Bpe(const std::array<int32_t, 256>& byte_tokens, const std::vector<Merge>& merges)
    : byte_tokens_(byte_tokens), n_merges_(merges.size()) {
    const size_t capacity = std::bit_ceil(std::max<size_t>(16, merges.size() * 2));
    slots_.assign(capacity, Slot{kEmpty, 0, 0});
    mask_ = capacity - 1;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const Merge& m = merges[rank];
        const uint64_t k = key(m.left, m.right);
        for (uint64_t i = slot_hash(k) & mask_;; i = (i + 1) & mask_) {
            if (slots_[i].key == k) break;  // a repeated pair keeps its first (lowest) rank
            if (slots_[i].key == kEmpty) {
                slots_[i] = {k, static_cast<int32_t>(rank), m.result};
                break;
            }
        }
    }
}

const Bpe::Slot* Bpe::find(int32_t left, int32_t right) const {
    const uint64_t k = key(left, right);
    for (uint64_t i = slot_hash(k) & mask_;; i = (i + 1) & mask_) {
        if (slots_[i].key == k) return &slots_[i];
        if (slots_[i].key == kEmpty) return nullptr;
    }
}

void Bpe::push_candidate(BpeScratch& s, int32_t left, int32_t right) const {
    const int32_t left_id = s.symbols[static_cast<size_t>(left)].id;
    const int32_t right_id = s.symbols[static_cast<size_t>(right)].id;
    const Slot* slot = find(left_id, right_id);
    if (slot == nullptr) return;
    s.heap.push_back({slot->rank, left, right, left_id, right_id, slot->result});
    std::push_heap(s.heap.begin(), s.heap.end(), heap_after);
}

void Bpe::encode(std::string_view piece, std::vector<int32_t>& out, BpeScratch& s) const {
    const auto n = static_cast<int32_t>(piece.size());
    if (n == 1) {
        out.push_back(byte_tokens_[static_cast<uint8_t>(piece[0])]);
        return;
    }
    s.symbols.resize(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i)
        s.symbols[static_cast<size_t>(i)] = {
            byte_tokens_[static_cast<uint8_t>(piece[static_cast<size_t>(i)])], i - 1,
            i + 1 < n ? i + 1 : -1};
    s.heap.clear();
    for (int32_t i = 0; i + 1 < n; ++i) push_candidate(s, i, i + 1);

    while (!s.heap.empty()) {
        std::pop_heap(s.heap.begin(), s.heap.end(), heap_after);
        const BpeScratch::Candidate c = s.heap.back();
        s.heap.pop_back();
        auto& left = s.symbols[static_cast<size_t>(c.left)];
        auto& right = s.symbols[static_cast<size_t>(c.right)];
        // Stale candidates (a side merged since it was queued) are skipped here.
        if (left.id != c.left_id || right.id != c.right_id || left.next != c.right) continue;
        left.id = c.result;
        left.next = right.next;
        if (right.next >= 0) s.symbols[static_cast<size_t>(right.next)].prev = c.left;
        right.id = -1;
        if (left.prev >= 0) push_candidate(s, left.prev, c.left);
        if (left.next >= 0) push_candidate(s, c.left, left.next);
    }
    for (int32_t i = 0; i >= 0; i = s.symbols[static_cast<size_t>(i)].next)
        out.push_back(s.symbols[static_cast<size_t>(i)].id);
}

}  // namespace strata::tokenizer
