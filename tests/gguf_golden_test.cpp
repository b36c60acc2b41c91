// The golden models (written by gguf-py and llama.cpp) read as golden/manifest.json describes
// them, and re-writing each one from its own metadata and tensors gives the same bytes: the
// writer's layout is llama.cpp's.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "runtime/gguf.h"
#include "tests/test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using gguf::ValueType;

nlohmann::ordered_json manifest() {
    return nlohmann::ordered_json::parse(test::read_file(test::golden_dir() / "manifest.json"));
}

// Compares one metadata value with its manifest entry: scalars by value, arrays by element type
// and length.
void expect_value(const std::string& key, const gguf::Value& v, const nlohmann::ordered_json& want,
                  const std::string& want_type) {
    SCOPED_TRACE(key);
    EXPECT_EQ(gguf::type_name(v.type), want_type);
    switch (v.type) {
        case ValueType::STRING:
            EXPECT_EQ(v.s, want.get<std::string>());
            break;
        case ValueType::BOOL:
            EXPECT_EQ(v.u != 0, want.get<bool>());
            break;
        case ValueType::FLOAT32:
            // The manifest holds the float widened to double; narrowing back is exact.
            EXPECT_EQ(static_cast<float>(v.f), static_cast<float>(want.get<double>()));
            break;
        case ValueType::FLOAT64:
            EXPECT_EQ(v.f, want.get<double>());
            break;
        case ValueType::ARRAY:
            EXPECT_EQ(gguf::type_name(v.elem), want.at("array_of").get<std::string>());
            EXPECT_EQ(v.count, want.at("len").get<uint64_t>());
            if (v.elem == ValueType::STRING) {
                EXPECT_EQ(v.strings.size(), v.count);
            }
            break;
        case ValueType::UINT64:
            EXPECT_EQ(v.u, want.get<uint64_t>());
            break;
        default:
            ASSERT_TRUE(v.is_integer());
            EXPECT_EQ(v.i, want.get<int64_t>());
            break;
    }
}

TEST(GgufGolden, EveryModelMatchesTheManifest) {
    STRATA_REQUIRE_GOLDEN();
    const auto m = manifest();
    std::map<std::string, bool> listed;
    for (const auto& model : m.at("models")) {
        const std::string file = model.at("file");
        SCOPED_TRACE(file);
        listed[fs::path(file).filename().string()] = true;
        const auto f = gguf::File::open((test::golden_dir() / file).string());

        EXPECT_EQ(f.arch(), model.at("arch").get<std::string>());
        EXPECT_EQ(f.file_bytes(), model.at("file_bytes").get<uint64_t>());
        EXPECT_EQ(f.file_bytes(), fs::file_size(test::golden_dir() / file));

        // Every key, in file order, with its type and value.
        const auto& meta = model.at("metadata");
        const auto& types = model.at("metadata_types");
        ASSERT_EQ(f.metadata().size(), meta.size());
        size_t k = 0;
        for (const auto& [key, want] : meta.items()) {
            const gguf::KeyValue& kv = f.metadata()[k++];
            EXPECT_EQ(kv.key, key);
            const gguf::Value* v = f.find(key);
            ASSERT_NE(v, nullptr) << key;
            expect_value(key, *v, want, types.at(key).get<std::string>());
        }

        // The tensor table: name, type, shape and absolute offset, in file order.
        const auto& tensors = model.at("tensors");
        ASSERT_EQ(f.tensors().size(), model.at("n_tensors").get<size_t>());
        ASSERT_EQ(f.tensors().size(), tensors.size());
        std::map<std::string, int> type_counts;
        for (size_t t = 0; t < tensors.size(); ++t) {
            const gguf::Tensor& got = f.tensors()[t];
            const auto& want = tensors[t];
            SCOPED_TRACE(want.at("name").get<std::string>());
            EXPECT_EQ(got.name, want.at("name").get<std::string>());
            EXPECT_EQ(quant::type_name(got.type), want.at("type").get<std::string>());
            const auto shape = want.at("shape").get<std::vector<int64_t>>();
            ASSERT_EQ(got.n_dims, static_cast<int>(shape.size()));
            for (size_t d = 0; d < shape.size(); ++d) EXPECT_EQ(got.ne[d], shape[d]);
            EXPECT_EQ(got.file_offset, want.at("offset").get<uint64_t>());
            ++type_counts[std::string(quant::type_name(got.type))];
        }
        EXPECT_EQ(type_counts, (model.at("types").get<std::map<std::string, int>>()));
    }
    // No model in the folder escapes the comparison.
    for (const auto& entry : fs::directory_iterator(test::golden_dir() / "models")) {
        if (entry.path().extension() == ".gguf") {
            EXPECT_TRUE(listed.count(entry.path().filename().string())) << entry.path();
        }
    }
    EXPECT_GE(listed.size(), 20u);
}

// Facts the golden README states about the vocab-only files.
TEST(GgufGolden, VocabFilesLoad) {
    STRATA_REQUIRE_GOLDEN();
    struct Vocab {
        const char* file;
        const char* arch;
        const char* pre;
        size_t n_vocab;
        uint32_t bos, eos;
    };
    const Vocab vocabs[] = {{"deepseek-v3.gguf", "deepseek2", "deepseek-v3", 129280, 0, 1},
                            {"llama-bpe.gguf", "llama", "llama-bpe", 128256, 128000, 128009},
                            {"qwen2.gguf", "qwen2", "qwen2", 151936, 151643, 151645}};
    for (const Vocab& v : vocabs) {
        SCOPED_TRACE(v.file);
        const auto f = gguf::File::open((test::golden_dir() / "vocab" / v.file).string());
        EXPECT_EQ(f.arch(), v.arch);
        EXPECT_TRUE(f.tensors().empty());
        EXPECT_EQ(f.get_str("tokenizer.ggml.model"), "gpt2");
        EXPECT_EQ(f.get_str("tokenizer.ggml.pre"), v.pre);
        EXPECT_EQ(f.get_str_array("tokenizer.ggml.tokens").size(), v.n_vocab);
        EXPECT_EQ(f.get_i32_array("tokenizer.ggml.token_type").size(), v.n_vocab);
        EXPECT_GT(f.get_str_array("tokenizer.ggml.merges").size(), 1000u);
        EXPECT_EQ(f.get_u32("tokenizer.ggml.bos_token_id"), v.bos);
        EXPECT_EQ(f.get_u32("tokenizer.ggml.eos_token_id"), v.eos);
        EXPECT_FALSE(f.get_str("tokenizer.chat_template").empty());
    }
}

// Re-writing a file from what the reader returns reproduces it byte for byte: header encoding,
// key order, tensor offsets, padding after every tensor (the last one too) and between the
// header and the data section.
TEST(GgufGolden, RewriteIsByteIdentical) {
    STRATA_REQUIRE_GOLDEN();
    test::TempDir dir;
    std::vector<fs::path> files;
    for (const char* sub : {"models", "vocab"}) {
        for (const auto& entry : fs::directory_iterator(test::golden_dir() / sub))
            if (entry.path().extension() == ".gguf") files.push_back(entry.path());
    }
    ASSERT_FALSE(files.empty());
    for (const fs::path& path : files) {
        SCOPED_TRACE(path.string());
        const auto f = gguf::File::open(path.string());
        gguf::Writer w(f.alignment());
        for (const gguf::KeyValue& kv : f.metadata()) w.set_value(std::string(kv.key), kv.value);
        for (const gguf::Tensor& t : f.tensors()) {
            w.add_tensor(std::string(t.name), t.type,
                         std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                         std::span<const uint8_t>(t.data, t.nbytes));
        }
        EXPECT_EQ(w.file_bytes(), f.file_bytes());
        const fs::path out = dir / "rewrite.gguf";
        w.write(out.string());
        const std::string original = test::read_file(path), copy = test::read_file(out);
        ASSERT_EQ(copy.size(), original.size());
        // Report the first differing byte rather than two multi-megabyte strings.
        const auto diff = std::mismatch(original.begin(), original.end(), copy.begin());
        EXPECT_TRUE(diff.first == original.end())
            << "first difference at byte " << (diff.first - original.begin());
    }
}

}  // namespace
}  // namespace strata
