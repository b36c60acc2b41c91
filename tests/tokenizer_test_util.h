// Helpers shared by the tokenizer tests: golden vocabularies loaded once, synthetic vocab files,
// and printable forms of strings and id lists for failure messages.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/gguf.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/test_util.h"

namespace strata::test {

// golden/vocab/<name>.gguf, loaded once per process (loading takes a fraction of a second).
inline const tokenizer::Tokenizer& golden_tokenizer(const std::string& name) {
    static std::map<std::string, tokenizer::Tokenizer> cache;
    auto it = cache.find(name);
    if (it == cache.end()) {
        const auto file = gguf::File::open((golden_dir() / "vocab" / (name + ".gguf")).string());
        it = cache.emplace(name, tokenizer::Tokenizer::load(file)).first;
    }
    return it->second;
}

inline const std::vector<std::string>& golden_vocab_names() {
    static const std::vector<std::string> names = {"deepseek-v3", "llama-bpe", "qwen2"};
    return names;
}

// "llama-bpe" → "llama_bpe": gtest names take no dashes.
inline std::string vocab_test_name(const ::testing::TestParamInfo<std::string>& param) {
    std::string name = param.param;
    for (char& c : name)
        if (c == '-') c = '_';
    return name;
}

// A string as a C-like literal with non-ASCII bytes escaped, for messages.
inline std::string escaped(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto b = static_cast<uint8_t>(ch);
        if (b == '"' || b == '\\')
            out += fmt::format("\\{}", ch);
        else if (b >= 0x20 && b < 0x7F)
            out += ch;
        else
            out += fmt::format("\\x{:02x}", b);
    }
    return out + "\"";
}

inline std::string ids_string(const std::vector<int32_t>& ids) {
    return fmt::format("[{}]", fmt::join(ids, ", "));
}

// A byte-level BPE vocabulary written to a GGUF file: tokens 0..255 are the bytes in byte order
// (spelled in the byte-level alphabet); callers append tokens, merges and keys.
struct SyntheticVocab {
    std::string model = "gpt2";
    std::optional<std::string> pre = "qwen2";
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<std::string> merges;
    std::optional<uint32_t> bos;
    std::optional<uint32_t> eos;
    std::optional<bool> add_bos;

    SyntheticVocab() {
        for (int b = 0; b < 256; ++b)
            add(tokenizer::byte_level_encode(std::string(1, static_cast<char>(b))));
    }
    // Adds a token (byte-level spelling for NORMAL ones); returns its id.
    int32_t add(const std::string& text,
                tokenizer::TokenType type = tokenizer::TokenType::kNormal) {
        tokens.push_back(text);
        types.push_back(static_cast<int32_t>(type));
        return static_cast<int32_t>(tokens.size() - 1);
    }
    void write(const std::string& path) const {
        gguf::Writer w;
        w.set_str("general.architecture", "llama");
        w.set_str("tokenizer.ggml.model", model);
        if (pre) w.set_str("tokenizer.ggml.pre", *pre);
        w.set_str_array("tokenizer.ggml.tokens", tokens);
        w.set_i32_array("tokenizer.ggml.token_type", types);
        w.set_str_array("tokenizer.ggml.merges", merges);
        if (bos) w.set_u32("tokenizer.ggml.bos_token_id", *bos);
        if (eos) w.set_u32("tokenizer.ggml.eos_token_id", *eos);
        if (add_bos) w.set_bool("tokenizer.ggml.add_bos_token", *add_bos);
        w.write(path);
    }
    tokenizer::Tokenizer load(const TempDir& dir) const {
        const std::string path = (dir / "vocab.gguf").string();
        write(path);
        return tokenizer::Tokenizer::load(gguf::File::open(path));
    }
};

}  // namespace strata::test
