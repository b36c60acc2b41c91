// Tokenizers for synthetic models: byte-level BPE vocabularies laid out as each family's
// converter writes them (tokenizer.ggml.model "gpt2"): the 256 byte tokens in GPT-2's
// bytes_to_unicode order, merges learned on a short English text, the family's special tokens,
// bos/eos/add_bos as the family's config has them, and the family's chat template.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/gguf.h"
#include "synth/spec.h"

namespace strata::synth {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t { Normal = 1, Control = 3, UserDefined = 4, Unused = 5 };

struct Vocab {
    std::vector<std::string> tokens;  // (n_vocab)
    std::vector<int32_t> types;       // (n_vocab) TokenType values
    std::vector<std::string> merges;  // "a b", in priority order
    int64_t bos = 0, eos = 0;
    std::optional<int64_t> pad;
    bool add_bos = false;
    std::optional<bool> add_eos;  // written only where the family's converter writes it
    std::string chat_template;
};

// The smallest vocabulary a family's tokenizer fits in (bytes and special tokens).
int64_t min_vocab(Arch arch);

// The GPT-2 byte-level spelling of each byte, in vocabulary order (printable bytes first).
std::vector<std::string> byte_tokens();

// Byte-level BPE merges learned on `text`: at most `max_merges`, most frequent pair first (ties
// broken by the pair's spelling), each "a b" with a and b in byte-level spelling.
std::vector<std::string> learn_merges(std::string_view text, size_t max_merges);

// A family's vocabulary of exactly n_vocab tokens. Ids not filled by bytes, merges and special
// tokens are "[PAD<id>]" (UNUSED), as the converter writes ids that have no token.
Vocab make_vocab(Arch arch, int64_t n_vocab);

// The tokenizer keys: the full vocabulary, or for shape-only specs the reduced set the tables
// were made with (model, pre, bos, eos).
void write_tokenizer(gguf::Writer& out, const Spec& spec);

}  // namespace strata::synth
