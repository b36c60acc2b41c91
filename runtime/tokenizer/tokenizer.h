// The tokenizer of a GGUF model (or vocab-only file): byte-level BPE ("gpt2") as llama.cpp stores
// it under tokenizer.ggml.*, with the pre-tokenizers of the DeepSeek-V3/R1, Llama 3 and Qwen2
// families. It reproduces the Hugging Face tokenizer.json of each family exactly: added tokens
// written in the text are matched whole first, then NFC (Qwen2), pre-tokenizer pieces and BPE.
//
//   const auto tok = tokenizer::Tokenizer::load(file);
//   std::vector<int32_t> ids = tok.encode(prompt, /*add_special=*/true);
//   std::string text = tok.decode(ids, tokenizer::Control::kSkip);
//
// A Tokenizer is immutable once loaded; copies share the data, and every method is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/gguf.h"

namespace strata::tokenizer {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : uint8_t {
    kUndefined = 0,
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,      // special tokens: BOS, EOS, chat markers; matched in text when asked
    kUserDefined = 4,  // added tokens that are not special (Qwen's <think>): always matched
    kUnused = 5,       // fillers such as [PAD129000]
    kByte = 6,
};

// How decode treats control (and unused) tokens.
enum class Control : uint8_t {
    kSkip,    // leave them out (what a user should see)
    kRender,  // write their text, e.g. "<|im_end|>" (what a log or a test wants)
};

class Tokenizer {
  public:
    // Reads tokenizer.ggml.{model, pre, tokens, token_type, merges, bos/eos/eot/eom/padding
    // _token_id, add_bos_token, add_eos_token}. Throws strata::Error naming the key when the
    // model is not "gpt2", the pre-tokenizer is not supported, or the vocabulary is inconsistent.
    static Tokenizer load(const gguf::File& file);

    // Text → token ids. `add_special`: BOS first and/or EOS last, as the file's add_bos/add_eos
    // flags say (llama.cpp's add_special). `parse_special`: control tokens written in the text
    // (e.g. "<|im_start|>") become their ids; when false they are tokenized as plain text.
    // User-defined added tokens are matched either way, as in llama.cpp and Hugging Face.
    std::vector<int32_t> encode(std::string_view text, bool add_special,
                                bool parse_special = true) const;

    // Token ids → the bytes they stand for, concatenated. The result can end inside (or contain
    // pieces of) a UTF-8 character when the ids do; use StreamDecoder for text to show.
    std::string decode(std::span<const int32_t> ids, Control control) const;

    int64_t n_vocab() const;
    // The token as the vocabulary stores it (byte-level spelling: "Ġthe").
    std::string_view token_text(int32_t id) const;
    // The bytes the token stands for (" the"); control and added tokens: their text.
    std::string_view token_bytes(int32_t id) const;
    // What decode writes for one token: its bytes, or nothing for a control, unused or unknown
    // token under Control::kSkip.
    std::string_view piece(int32_t id, Control control) const;
    TokenType token_type(int32_t id) const;
    bool is_control(int32_t id) const { return token_type(id) == TokenType::kControl; }
    // End of generation: EOS, EOT, EOM, and the control tokens that end a turn in these families
    // (<|eot_id|>, <|eom_id|>, <|end_of_text|>, <|im_end|>, <|endoftext|>, <｜end▁of▁sentence｜>).
    bool is_eog(int32_t id) const;
    // The id of a token by its vocabulary text (byte-level spelling), e.g. "<think>".
    std::optional<int32_t> find_token(std::string_view text) const;
    // The token of a single byte.
    int32_t byte_token(uint8_t b) const;

    int32_t bos() const;  // -1 when the file names none
    int32_t eos() const;
    int32_t pad() const;
    bool add_bos() const;          // tokenizer.ggml.add_bos_token
    bool add_eos() const;          // tokenizer.ggml.add_eos_token
    std::string_view pre() const;  // tokenizer.ggml.pre

    struct Data;

  private:
    explicit Tokenizer(std::shared_ptr<const Data> data) : d_(std::move(data)) {}
    const Data& d() const { return *d_; }
    void check_id(int32_t id) const;

    std::shared_ptr<const Data> d_;
};

}  // namespace strata::tokenizer
