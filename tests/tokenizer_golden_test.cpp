// The tokenizer against the golden ids of Hugging Face's tokenizers (golden/tokenizer/), with the
// golden vocab-only files and the golden models, and the `strata tokenize` command.
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/tokenizer/stream_decoder.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/tokenizer_test_util.h"

namespace strata {
namespace {

using tokenizer::Control;

nlohmann::json read_json(const std::filesystem::path& path) {
    return nlohmann::json::parse(test::read_file(path));
}

const std::vector<std::string>& golden_strings() {
    static const std::vector<std::string> strings =
        read_json(test::golden_dir() / "tokenizer/strings.json").get<std::vector<std::string>>();
    return strings;
}

// NFC by utf8proc directly (not through the code under test).
std::string reference_nfc(const std::string& s) {
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                static_cast<utf8proc_ssize_t>(s.size()), &out,
                                static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    EXPECT_GE(n, 0) << test::escaped(s);
    std::string r = n >= 0 ? std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n)) : s;
    std::free(out);
    return r;
}

class GoldenTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTokenizer, EveryStringGivesTheOracleIds) {
    STRATA_REQUIRE_GOLDEN();
    const std::string& vocab = GetParam();
    const auto& tok = test::golden_tokenizer(vocab);
    const nlohmann::json golden =
        read_json(test::golden_dir() / ("tokenizer/ids." + vocab + ".json"));
    const auto& strings = golden_strings();
    const auto expected = golden.at("ids").get<std::vector<std::vector<int32_t>>>();
    ASSERT_EQ(expected.size(), strings.size());
    ASSERT_FALSE(golden.at("add_special_tokens").get<bool>());

    size_t same = 0;
    for (size_t i = 0; i < strings.size(); ++i) {
        const auto ids = tok.encode(strings[i], /*add_special=*/false, /*parse_special=*/true);
        if (ids == expected[i]) {
            ++same;
            continue;
        }
        ADD_FAILURE() << vocab << " string " << i << " " << test::escaped(strings[i])
                      << "\n  strata: " << test::ids_string(ids)
                      << "\n  oracle: " << test::ids_string(expected[i]);
    }
    std::printf("[ golden   ] %s: %zu/%zu strings identical\n", vocab.c_str(), same,
                strings.size());
    EXPECT_EQ(same, strings.size());
}

TEST_P(GoldenTokenizer, DecodeInvertsEncode) {
    STRATA_REQUIRE_GOLDEN();
    const std::string& vocab = GetParam();
    const auto& tok = test::golden_tokenizer(vocab);
    const bool nfc = tok.pre() == "qwen2";
    for (const std::string& s : golden_strings()) {
        const auto ids = tok.encode(s, false);
        EXPECT_EQ(tok.decode(ids, Control::kRender), nfc ? reference_nfc(s) : s)
            << test::escaped(s);
    }
}

TEST_P(GoldenTokenizer, StreamingDecodeEmitsOnlyWholeCharacters) {
    STRATA_REQUIRE_GOLDEN();
    const auto& tok = test::golden_tokenizer(GetParam());
    size_t held = 0;
    for (const std::string& s : golden_strings()) {
        const auto ids = tok.encode(s, false);
        tokenizer::StreamDecoder stream(tok, Control::kRender);
        std::string joined;
        for (const int32_t id : ids) {
            const std::string chunk = stream.push(id);
            EXPECT_TRUE(tokenizer::is_valid_utf8(chunk)) << test::escaped(s);
            held += stream.pending() > 0;
            joined += chunk;
        }
        joined += stream.flush();
        EXPECT_EQ(joined, tok.decode(ids, Control::kRender)) << test::escaped(s);
    }
    // Emoji and CJK split over tokens: the hold-back path must have been exercised.
    EXPECT_GT(held, 0u);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, GoldenTokenizer, ::testing::ValuesIn(test::golden_vocab_names()),
                         test::vocab_test_name);

TEST(GoldenTokenizerFiles, SpecialIdsAndFlags) {
    STRATA_REQUIRE_GOLDEN();
    const auto& ds = test::golden_tokenizer("deepseek-v3");
    EXPECT_EQ(ds.n_vocab(), 129280);
    EXPECT_EQ(ds.bos(), 0);
    EXPECT_EQ(ds.eos(), 1);
    EXPECT_TRUE(ds.add_bos());
    EXPECT_TRUE(ds.is_eog(1));
    EXPECT_EQ(ds.token_text(0), "<｜begin▁of▁sentence｜>");
    EXPECT_EQ(ds.token_type(129000), tokenizer::TokenType::kUnused);

    const auto& llama = test::golden_tokenizer("llama-bpe");
    EXPECT_EQ(llama.bos(), 128000);
    EXPECT_TRUE(llama.is_eog(llama.find_token("<|eot_id|>").value()));
    EXPECT_TRUE(llama.is_eog(llama.find_token("<|end_of_text|>").value()));
    EXPECT_FALSE(llama.is_eog(llama.find_token("<|start_header_id|>").value()));
    EXPECT_EQ(llama.encode("", true), (std::vector<int32_t>{128000}));

    const auto& qwen = test::golden_tokenizer("qwen2");
    EXPECT_FALSE(qwen.add_bos());
    EXPECT_EQ(qwen.encode("hi", true), qwen.encode("hi", false));
    EXPECT_TRUE(qwen.is_eog(qwen.find_token("<|im_end|>").value()));
    EXPECT_TRUE(qwen.is_eog(qwen.find_token("<|endoftext|>").value()));
    const int32_t think = qwen.find_token("<think>").value();
    EXPECT_EQ(qwen.token_type(think), tokenizer::TokenType::kUserDefined);
    // <think> is user-defined: matched and shown even with special parsing off / control skipped.
    const auto ids = qwen.encode("<|im_start|><think>", false, /*parse_special=*/false);
    EXPECT_EQ(ids.back(), think);
    EXPECT_GT(ids.size(), 2u);
    EXPECT_EQ(qwen.decode(qwen.encode("<|im_start|>x<think>", false), Control::kSkip), "x<think>");
}

TEST(GoldenTokenizerFiles, ModelFilesLoadToo) {
    STRATA_REQUIRE_GOLDEN();
    for (const char* name : {"llama.f32.gguf", "qwen2.f32.gguf", "deepseek2.f32.gguf"}) {
        SCOPED_TRACE(name);
        const auto file = gguf::File::open((test::golden_dir() / "models" / name).string());
        const auto tok = tokenizer::Tokenizer::load(file);
        EXPECT_EQ(tok.n_vocab(), 512);
        const std::string text = "The quick brown fox, the end.\n";
        const auto ids = tok.encode(text, true);
        EXPECT_EQ(tok.decode(ids, Control::kSkip), text);
        // The merges learned on English text must do some work on English text.
        EXPECT_LT(ids.size(), text.size());
        EXPECT_TRUE(tok.is_eog(tok.eos()));
    }
}

// ---- strata tokenize ----------------------------------------------------------------------

std::string vocab_path(const std::string& name) {
    return (test::golden_dir() / "vocab" / (name + ".gguf")).string();
}

TEST(TokenizeCommand, JsonMatchesTheGoldenIds) {
    STRATA_REQUIRE_GOLDEN();
    // strings[11] is "Hello world"; llama-bpe adds BOS by default, --no-bos takes it away.
    const auto expected = read_json(test::golden_dir() / "tokenizer/ids.llama-bpe.json")
                              .at("ids")[11]
                              .get<std::vector<int32_t>>();
    ASSERT_EQ(golden_strings()[11], "Hello world");

    auto r =
        test::run_strata("tokenize -m " + vocab_path("llama-bpe") + " --text 'Hello world' --json");
    ASSERT_EQ(r.status, 0) << r.err;
    auto out = nlohmann::json::parse(r.out);
    std::vector<int32_t> with_bos = {128000};
    with_bos.insert(with_bos.end(), expected.begin(), expected.end());
    EXPECT_EQ(out.at("ids").get<std::vector<int32_t>>(), with_bos);
    EXPECT_EQ(out.at("pieces"), nlohmann::json({"<|begin_of_text|>", "Hello", " world"}));

    r = test::run_strata("tokenize -m " + vocab_path("llama-bpe") +
                         " --text 'Hello world' --json --no-bos");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out).at("ids").get<std::vector<int32_t>>(), expected);
}

TEST(TokenizeCommand, FileBytesAndSpecialParsing) {
    STRATA_REQUIRE_GOLDEN();
    const auto& qwen = test::golden_tokenizer("qwen2");
    test::TempDir dir;
    const std::string text = "<|im_start|>user\r\n\tcaf\xC3\xA9 \xF0\x9F\x98\x80\n\n";
    std::ofstream(dir / "in.txt", std::ios::binary) << text;

    auto r = test::run_strata("tokenize -m " + vocab_path("qwen2") + " -f " +
                              (dir / "in.txt").string() + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    auto ids = nlohmann::json::parse(r.out).at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(ids, qwen.encode(text, true, true));
    EXPECT_EQ(ids.front(), qwen.find_token("<|im_start|>").value());
    EXPECT_EQ(qwen.decode(ids, Control::kRender), text);

    r = test::run_strata("tokenize -m " + vocab_path("qwen2") + " -f " + (dir / "in.txt").string() +
                         " --json --no-special");
    ASSERT_EQ(r.status, 0) << r.err;
    ids = nlohmann::json::parse(r.out).at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(ids, qwen.encode(text, true, false));
    EXPECT_NE(ids.front(), qwen.find_token("<|im_start|>").value());
}

TEST(TokenizeCommand, HumanOutputAndUsageErrors) {
    STRATA_REQUIRE_GOLDEN();
    auto r = test::run_strata("tokenize -m " + vocab_path("deepseek-v3") + " --text 'a 2'");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("-> '<｜begin▁of▁sentence｜>'"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("-> ' '"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("-> '2'"), std::string::npos) << r.out;

    r = test::run_strata("tokenize -m " + vocab_path("qwen2"));
    EXPECT_EQ(r.status, 2);
    r = test::run_strata("tokenize -m " + vocab_path("qwen2") + " --text a -f /dev/null");
    EXPECT_EQ(r.status, 2);
    r = test::run_strata("tokenize -m /nonexistent.gguf --text a");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("strata: error:"), std::string::npos);
}

}  // namespace
}  // namespace strata
