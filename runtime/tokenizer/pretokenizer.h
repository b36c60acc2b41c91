// Pre-tokenizers: split text into the pieces that BPE encodes one by one. Each is a hand-written
// matcher over code points that reproduces one regex of the Hugging Face tokenizer.json exactly
// (leftmost match, alternatives tried in order, greedy with backtracking), without a regex engine.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/unicode.h"

namespace strata::tokenizer {

enum class PreTokenizer {
    // DeepSeek-V3 / R1: isolate \p{N}{1,3}, then CJK and kana runs, then its main pattern.
    kDeepSeekV3,
    // Llama 3 / R1-Distill-Llama: the tiktoken-style pattern with \p{N}{1,3}.
    kLlama3,
    // Qwen2 / R1-Distill-Qwen: the same pattern with single digits (\p{N}); NFC first.
    kQwen2,
};

struct PreTokenizerSpec {
    PreTokenizer kind = PreTokenizer::kLlama3;
    bool nfc = false;            // apply Unicode NFC before splitting
    bool ignore_merges = false;  // a piece that is a vocabulary token is taken whole (Llama 3)
};

// The pre-tokenizer of a `tokenizer.ggml.pre` value: deepseek-v3, llama-bpe, qwen2 or
// deepseek-r1-qwen. Anything else throws strata::Error naming the value and the supported ones.
PreTokenizerSpec pre_tokenizer_from_name(std::string_view name);

// A piece: bytes [begin, end) of the text.
struct Piece {
    size_t begin = 0;
    size_t end = 0;
};

// Splits `text` into pieces that cover it in order, appending them to `out`. `scratch` holds the
// decoded code points between calls (to save allocations).
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<CodePoint>& scratch,
                  std::vector<Piece>& out);

}  // namespace strata::tokenizer
