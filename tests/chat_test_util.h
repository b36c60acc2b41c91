// Helpers shared by the chat tests: small vocabulary files with chosen special tokens, template
// and name.
#pragma once

#include <string>
#include <vector>

#include "runtime/gguf.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/test_util.h"

namespace strata::test {

// A byte-level vocabulary: the 256 byte tokens, then `extra_tokens` (CONTROL unless listed in
// `user_defined`). The first extra token is BOS and the second EOS when there are that many.
struct ChatVocabFile {
    std::vector<std::string> extra_tokens;
    std::string chat_template;  // empty: no tokenizer.chat_template
    std::string name;           // empty: no general.name
    std::vector<std::string> user_defined = {};

    gguf::File write(const TempDir& dir, const std::string& file = "vocab.gguf") const {
        gguf::Writer w;
        w.set_str("general.architecture", "llama");
        if (!name.empty()) w.set_str("general.name", name);
        w.set_str("tokenizer.ggml.model", "gpt2");
        w.set_str("tokenizer.ggml.pre", "qwen2");
        std::vector<std::string> tokens;
        std::vector<int32_t> types;
        for (int b = 0; b < 256; ++b) {
            tokens.push_back(tokenizer::byte_level_encode(std::string(1, static_cast<char>(b))));
            types.push_back(static_cast<int32_t>(tokenizer::TokenType::kNormal));
        }
        for (const std::string& t : extra_tokens) {
            bool user = false;
            for (const std::string& u : user_defined) user |= u == t;
            tokens.push_back(t);
            types.push_back(static_cast<int32_t>(user ? tokenizer::TokenType::kUserDefined
                                                      : tokenizer::TokenType::kControl));
        }
        w.set_str_array("tokenizer.ggml.tokens", tokens);
        w.set_i32_array("tokenizer.ggml.token_type", types);
        w.set_str_array("tokenizer.ggml.merges", {});
        if (!extra_tokens.empty()) w.set_u32("tokenizer.ggml.bos_token_id", 256);
        if (extra_tokens.size() > 1) w.set_u32("tokenizer.ggml.eos_token_id", 257);
        if (!chat_template.empty()) w.set_str("tokenizer.chat_template", chat_template);
        const std::string path = (dir / file).string();
        w.write(path);
        return gguf::File::open(path);
    }
};

}  // namespace strata::test
