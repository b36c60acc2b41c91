// Helpers shared by the chat tests: small vocabulary files with chosen special tokens, template
// and name.
#pragma once

#include <gtest/gtest.h>
#include <map>
#include <span>
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

// Writes a copy of `base` (F32 token_embd, output and output_norm) in which greedy decoding
// follows `next`: after token a comes next[a]. Every other tensor is zero: the attention and
// expert outputs vanish and the residual stream is the embedding. The embedding of each a is a
// unit vector of its own dimension k, and output row next[a] reads that dimension with weight 50,
// so its logit is 50·sqrt(n_embd) after the output norm and every other logit is 0.
inline void write_chain_model(const gguf::File& base, const std::map<int32_t, int32_t>& next,
                              const std::string& path) {
    gguf::Writer w(base.alignment());
    for (const gguf::KeyValue& kv : base.metadata()) w.set_value(std::string(kv.key), kv.value);
    const gguf::Tensor& embd = base.tensor("token_embd.weight");
    const gguf::Tensor& out = base.tensor("output.weight");
    const int64_t n_embd = embd.ne[0], n_vocab = embd.ne[1];
    ASSERT_EQ(embd.type, quant::Type::F32);
    ASSERT_EQ(out.type, quant::Type::F32);
    ASSERT_LE(static_cast<int64_t>(next.size()), n_embd);
    std::vector<float> e, o, norm;  // (n_vocab, n_embd), (n_vocab, n_embd), (n_embd)
    e.assign(static_cast<size_t>(n_embd * n_vocab), 0.0f);
    o.assign(static_cast<size_t>(n_embd * n_vocab), 0.0f);
    norm.assign(static_cast<size_t>(n_embd), 1.0f);
    int64_t k = 0;
    for (const auto& [a, b] : next) {
        e[static_cast<size_t>(a * n_embd + k)] = 1.0f;
        o[static_cast<size_t>(b * n_embd + k)] = 50.0f;
        ++k;
    }
    const auto bytes = [](const std::vector<float>& v) {
        return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
    };
    for (const gguf::Tensor& t : base.tensors()) {
        std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
        const std::string name(t.name);
        if (name == "token_embd.weight")
            w.add_tensor(name, t.type, ne, bytes(e));
        else if (name == "output.weight")
            w.add_tensor(name, t.type, ne, bytes(o));
        else if (name == "output_norm.weight")
            w.add_tensor(name, t.type, ne, bytes(norm));
        else
            w.add_tensor(name, t.type, ne, gguf::Writer::Fill());  // zeros
    }
    w.write(path);
}

}  // namespace strata::test
