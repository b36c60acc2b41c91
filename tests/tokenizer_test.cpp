// Tokenizer units: UTF-8 decoding, the byte-level alphabet, the pre-tokenizer patterns, BPE and
// added tokens on small vocabularies built here, load errors, and the streaming decoder.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/tokenizer/byte_level.h"
#include "runtime/tokenizer/pretokenizer.h"
#include "runtime/tokenizer/stream_decoder.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"
#include "runtime/tokenizer/utf8.h"
#include "tests/tokenizer_test_util.h"

namespace strata {
namespace {

using tokenizer::Control;
using tokenizer::PreTokenizer;
using tokenizer::TokenType;

std::vector<std::string> pieces(PreTokenizer kind, std::string_view text) {
    std::vector<tokenizer::CodePoint> scratch;
    std::vector<tokenizer::Piece> out;
    tokenizer::pre_tokenize(kind, text, scratch, out);
    std::vector<std::string> result;
    for (const auto& p : out) result.emplace_back(text.substr(p.begin, p.end - p.begin));
    return result;
}

using Pieces = std::vector<std::string>;

TEST(TokenizerUtf8, DecodesAndMeasuresIllFormedSequences) {
    using tokenizer::Utf8Sequence;
    const auto seq = [](std::string_view s) { return tokenizer::decode_utf8(s, 0); };
    EXPECT_EQ(seq("A").cp, 0x41u);
    EXPECT_EQ(seq("\xC3\xA9").cp, 0xE9u);             // é
    EXPECT_EQ(seq("\xE2\x82\xAC").cp, 0x20ACu);       // €
    EXPECT_EQ(seq("\xF0\x9F\x98\x80").cp, 0x1F600u);  // 😀
    EXPECT_EQ(seq("\xF0\x9F\x98\x80").len, 4u);
    EXPECT_EQ(seq("\xE2\x82").status, Utf8Sequence::kIncomplete);
    EXPECT_EQ(seq("\xF0").status, Utf8Sequence::kIncomplete);
    // Overlong forms, surrogates, values past U+10FFFF and stray continuation bytes are
    // ill-formed; the maximal subpart is the lead byte plus the continuation bytes that fit.
    EXPECT_EQ(seq("\xC0\x80").status, Utf8Sequence::kInvalid);
    EXPECT_EQ(seq("\xC0\x80").len, 1u);
    EXPECT_EQ(seq("\xE0\x80\x80").len, 1u);
    EXPECT_EQ(seq("\xED\xA0\x80").status, Utf8Sequence::kInvalid);
    EXPECT_EQ(seq("\xF4\x90\x80\x80").status, Utf8Sequence::kInvalid);
    EXPECT_EQ(seq("\x80").status, Utf8Sequence::kInvalid);
    EXPECT_EQ(seq("\xE2\x82X").status, Utf8Sequence::kInvalid);
    EXPECT_EQ(seq("\xE2\x82X").len, 2u);

    EXPECT_TRUE(tokenizer::is_valid_utf8("héllo 😀"));
    EXPECT_FALSE(tokenizer::is_valid_utf8("h\xC3"));
    EXPECT_EQ(tokenizer::sanitize_utf8("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");
    EXPECT_EQ(tokenizer::sanitize_utf8("\xF0\x9F\x98!"), "\xEF\xBF\xBD!");
    EXPECT_EQ(tokenizer::sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerUnicode, ClassesFollowGeneralCategoriesAndWhiteSpace) {
    using namespace tokenizer;
    EXPECT_EQ(char_class('a'), kLetter);
    EXPECT_EQ(char_class(0x4E2D), kLetter);  // 中
    EXPECT_EQ(char_class('7'), kNumber);
    EXPECT_EQ(char_class(0x00BD), kNumber);  // ½ (No)
    EXPECT_EQ(char_class(0x2167), kNumber);  // Ⅷ (Nl)
    EXPECT_EQ(char_class(','), kPunct);
    EXPECT_EQ(char_class(0x300C), kPunct);  // 「
    EXPECT_EQ(char_class('+'), kSymbol);
    EXPECT_EQ(char_class(0x1F600), kSymbol);  // 😀 (So)
    EXPECT_EQ(char_class(0x0301), kMark);
    EXPECT_EQ(char_class(' '), kSpace);
    EXPECT_EQ(char_class(0x0085), kSpace);  // NEL is White_Space
    EXPECT_EQ(char_class(0x3000), kSpace);
    EXPECT_EQ(char_class(0xFEFF), 0);  // BOM is not (Cf)
    EXPECT_EQ(char_class(0x200D), 0);  // ZWJ (Cf)
    EXPECT_EQ(char_class(0x110000), 0);
}

TEST(TokenizerUnicode, NfcComposesAndKeepsIllFormedBytes) {
    EXPECT_EQ(tokenizer::nfc("e\xCC\x81"), "\xC3\xA9");     // e + U+0301 → é
    EXPECT_EQ(tokenizer::nfc("\xE2\x84\xAB"), "\xC3\x85");  // Ångström sign → Å
    EXPECT_EQ(tokenizer::nfc("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // jamo ᄀ+ᅡ → 가
    EXPECT_EQ(tokenizer::nfc("plain ascii"), "plain ascii");
    // An ill-formed byte stays, and nothing composes across it.
    EXPECT_EQ(tokenizer::nfc("e\xFF\xCC\x81"), "e\xFF\xCC\x81");
    EXPECT_EQ(tokenizer::nfc("a\xFFo\xCC\x88"), "a\xFF\xC3\xB6");
}

TEST(TokenizerByteLevel, AlphabetIsGpt2s) {
    using namespace tokenizer;
    EXPECT_EQ(byte_to_code_point('a'), uint32_t{'a'});
    EXPECT_EQ(byte_to_code_point(' '), 0x120u);   // Ġ
    EXPECT_EQ(byte_to_code_point('\n'), 0x10Au);  // Ċ
    EXPECT_EQ(byte_to_code_point(0x00), 0x100u);
    EXPECT_EQ(byte_to_code_point(0x7F), 0x121u);
    EXPECT_EQ(byte_to_code_point(0xAD), 0x143u);
    EXPECT_EQ(byte_to_code_point(0xE9), 0xE9u);
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    std::string back;
    ASSERT_TRUE(byte_level_decode(byte_level_encode(all), back));
    EXPECT_EQ(back, all);
    EXPECT_EQ(byte_level_encode(" the"), "\xC4\xA0the");
    EXPECT_FALSE(byte_level_decode("\xEF\xBD\x9C", back));  // ｜ is not in the alphabet
}

TEST(TokenizerPreTokenizer, Llama3Pattern) {
    const auto split = [](std::string_view s) { return pieces(PreTokenizer::kLlama3, s); };
    EXPECT_EQ(split("Hello world"), (Pieces{"Hello", " world"}));
    EXPECT_EQ(split("   leading"), (Pieces{"  ", " leading"}));
    EXPECT_EQ(split("trailing   "), (Pieces{"trailing", "   "}));
    EXPECT_EQ(split("a  \n\n b"), (Pieces{"a", "  \n\n", " b"}));
    EXPECT_EQ(split("x \t\ny"), (Pieces{"x", " \t\n", "y"}));
    EXPECT_EQ(split("1234567"), (Pieces{"123", "456", "7"}));
    EXPECT_EQ(split("I'm HE'S we'Ll"), (Pieces{"I", "'m", " HE", "'S", " we", "'Ll"}));
    EXPECT_EQ(split("'x"), (Pieces{"'x"}));
    EXPECT_EQ(split("x !!!\n\ny"), (Pieces{"x", " !!!\n\n", "y"}));
    EXPECT_EQ(split("$x"), (Pieces{"$x"}));
    EXPECT_EQ(split("\tx"), (Pieces{"\tx"}));
    EXPECT_EQ(split("\nx"), (Pieces{"\n", "x"}));
    EXPECT_EQ(split("a\xC2\xA0\xC2\xA0"
                    "b"),
              (Pieces{"a", "\xC2\xA0",
                      "\xC2\xA0"
                      "b"}));
    EXPECT_EQ(split(""), Pieces{});
}

TEST(TokenizerPreTokenizer, Qwen2TakesDigitsOneByOne) {
    EXPECT_EQ(pieces(PreTokenizer::kQwen2, "x123 4"), (Pieces{"x", "1", "2", "3", " ", "4"}));
    EXPECT_EQ(pieces(PreTokenizer::kQwen2, "\xD9\xA3\xD9\xA4"), (Pieces{"\xD9\xA3", "\xD9\xA4"}));
}

TEST(TokenizerPreTokenizer, DeepSeekV3Sequence) {
    const auto split = [](std::string_view s) { return pieces(PreTokenizer::kDeepSeekV3, s); };
    EXPECT_EQ(split("abc12345def"), (Pieces{"abc", "123", "45", "def"}));
    EXPECT_EQ(split("x 2"), (Pieces{"x", " ", "2"}));  // the number is isolated before the space
    // 日本語テキストabc: CJK and kana form one run, isolated from the Latin letters.
    EXPECT_EQ(split("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x83\x86"
                    "abc"),
              (Pieces{"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x83\x86", "abc"}));
    EXPECT_EQ(split("(hello) world"), (Pieces{"(hello", ")", " world"}));
    EXPECT_EQ(split("a, b"), (Pieces{"a", ",", " b"}));
    EXPECT_EQ(split("x !?\ny"), (Pieces{"x", " !?\n", "y"}));
    // Marks join letters; ZWJ (Cf) matches no alternative and stays a piece between the emoji.
    EXPECT_EQ(split("e\xCC\x81t\xC3\xA9"), (Pieces{"e\xCC\x81t\xC3\xA9"}));
    EXPECT_EQ(split("\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9"),
              (Pieces{"\xF0\x9F\x91\xA8", "\xE2\x80\x8D", "\xF0\x9F\x91\xA9"}));
    EXPECT_EQ(split("  x"), (Pieces{" ", " x"}));
}

TEST(TokenizerPreTokenizer, IllFormedBytesStayInPlace) {
    for (const PreTokenizer kind :
         {PreTokenizer::kLlama3, PreTokenizer::kQwen2, PreTokenizer::kDeepSeekV3}) {
        const std::string text = "ab\xFF\xFE cd\xE2\x82";
        std::string joined;
        for (const auto& p : pieces(kind, text)) joined += p;
        EXPECT_EQ(joined, text);
    }
}

TEST(TokenizerPreTokenizer, UnknownNamesAreRefused) {
    EXPECT_TRUE(tokenizer::pre_tokenizer_from_name("deepseek-r1-qwen").nfc);
    EXPECT_TRUE(tokenizer::pre_tokenizer_from_name("llama-bpe").ignore_merges);
    try {
        tokenizer::pre_tokenizer_from_name("gpt-4o");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("\"gpt-4o\""), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.pre"), std::string::npos) << e.what();
    }
}

// Bytes 0..255, then: ab bc abc aa xyz, and added tokens.
struct SmallVocab : test::SyntheticVocab {
    int32_t ab, bc, abc, aa, xyz, s, s_x, bcd_user, cdef_ctrl, end;
    SmallVocab() {
        ab = add("ab");
        bc = add("bc");
        abc = add("abc");
        aa = add("aa");
        xyz = add("xyz");  // reachable by no merge: only a whole-piece lookup finds it
        s = add("<s>", TokenType::kControl);
        s_x = add("<s>x", TokenType::kControl);
        bcd_user = add("bcd", TokenType::kUserDefined);
        cdef_ctrl = add("cdefg", TokenType::kControl);
        end = add("<|end|>", TokenType::kControl);
        // Rank order: bc before ab, so "abc" is a + bc → abc.
        merges = {"b c", "a b", "a bc", "a a"};
        bos = static_cast<uint32_t>(s);
        eos = static_cast<uint32_t>(end);
        add_bos = true;
    }
};

TEST(TokenizerBpe, MergesByRankThenLeftmost) {
    test::TempDir dir;
    const SmallVocab v;
    const auto tok = v.load(dir);
    using Ids = std::vector<int32_t>;
    EXPECT_EQ(tok.encode("abc", false), (Ids{v.abc}));
    EXPECT_EQ(tok.encode("abab", false), (Ids{v.ab, v.ab}));
    EXPECT_EQ(tok.encode("aabc", false), (Ids{'a', v.abc}));  // bc outranks aa and ab
    EXPECT_EQ(tok.encode("aaa", false), (Ids{v.aa, 'a'}));    // leftmost among equal ranks
    EXPECT_EQ(tok.encode("xyz", false), (Ids{'x', 'y', 'z'}));
    EXPECT_EQ(tok.encode(" ab", false), (Ids{' ', v.ab}));  // no merge with the space
    EXPECT_EQ(tok.encode("", false), Ids{});
    EXPECT_EQ(tok.encode("", true), (Ids{v.s}));
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeVocabularyWords) {
    test::TempDir dir;
    SmallVocab v;
    v.pre = "llama-bpe";
    const auto tok = v.load(dir);
    EXPECT_EQ(tok.encode("xyz", false), (std::vector<int32_t>{v.xyz}));
    EXPECT_EQ(tok.encode("xyzab", false), (std::vector<int32_t>{'x', 'y', 'z', v.ab}));
}

TEST(TokenizerAddedTokens, LeftmostThenLongest) {
    test::TempDir dir;
    const SmallVocab v;
    const auto tok = v.load(dir);
    using Ids = std::vector<int32_t>;
    EXPECT_EQ(tok.encode("<s>xa", false), (Ids{v.s_x, 'a'}));
    EXPECT_EQ(tok.encode("<s>a", false), (Ids{v.s, 'a'}));
    // "bcd" starts first, so it wins over the longer "cdefg" that overlaps it.
    EXPECT_EQ(tok.encode("abcdefg", false), (Ids{'a', v.bcd_user, 'e', 'f', 'g'}));
    EXPECT_EQ(tok.encode("cdefgbcd", false), (Ids{v.cdef_ctrl, v.bcd_user}));
    EXPECT_EQ(tok.encode("ab<|end|>ab", true), (Ids{v.s, v.ab, v.end, v.ab}));
}

TEST(TokenizerAddedTokens, SpecialParsingOffKeepsUserDefinedTokens) {
    test::TempDir dir;
    const SmallVocab v;
    const auto tok = v.load(dir);
    const auto ids = tok.encode("<s>bcd", false, /*parse_special=*/false);
    EXPECT_EQ(ids.size(), 4u);  // < s > as text, then the user-defined token
    EXPECT_EQ(ids.back(), v.bcd_user);
    EXPECT_EQ(tok.decode(ids, Control::kSkip), "<s>bcd");
}

TEST(TokenizerDecode, ControlTokensRenderedOrSkipped) {
    test::TempDir dir;
    const SmallVocab v;
    const auto tok = v.load(dir);
    const auto ids = tok.encode("hi<|end|> \n", true);
    EXPECT_EQ(tok.decode(ids, Control::kRender), "<s>hi<|end|> \n");
    EXPECT_EQ(tok.decode(ids, Control::kSkip), "hi \n");
    EXPECT_TRUE(tok.is_eog(v.end));
    EXPECT_FALSE(tok.is_eog(v.s));
    EXPECT_EQ(tok.token_text(' '), "\xC4\xA0");
    EXPECT_EQ(tok.token_bytes(' '), " ");
    EXPECT_EQ(tok.find_token("abc"), v.abc);
    EXPECT_FALSE(tok.find_token("nope").has_value());
    EXPECT_THROW(tok.token_text(-1), Error);
    EXPECT_THROW(
        tok.decode(std::vector<int32_t>{static_cast<int32_t>(tok.n_vocab())}, Control::kSkip),
        Error);
}

// Load errors name the key and what was wrong.
void expect_load_error(const test::SyntheticVocab& v, const std::string& needle) {
    test::TempDir dir;
    try {
        v.load(dir);
        ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(TokenizerLoad, RefusesUnsupportedOrInconsistentVocabularies) {
    {
        SmallVocab v;
        v.model = "llama";
        expect_load_error(v, "tokenizer.ggml.model is \"llama\"");
    }
    {
        SmallVocab v;
        v.pre = "falcon";
        expect_load_error(v, "unsupported pre-tokenizer \"falcon\"");
    }
    {
        SmallVocab v;
        v.pre.reset();
        expect_load_error(v, "tokenizer.ggml.pre is missing");
    }
    {
        SmallVocab v;
        v.merges.push_back("a zz");
        expect_load_error(v, "tokenizer.ggml.merges[4] = \"a zz\"");
    }
    {
        SmallVocab v;
        v.merges.push_back("abc");
        expect_load_error(v, "expected two tokens separated by a space");
    }
    {
        SmallVocab v;
        v.types.pop_back();
        expect_load_error(v, "tokenizer.ggml.token_type has");
    }
    {
        SmallVocab v;
        v.types[static_cast<size_t>(v.ab)] = 9;
        expect_load_error(v, "expected a token type 0..6");
    }
    {
        SmallVocab v;
        v.tokens['q'] = "not-q";
        expect_load_error(v, "no token for byte 0x71");
    }
    {
        SmallVocab v;
        v.bos = 100000;
        expect_load_error(v, "tokenizer.ggml.bos_token_id: token id 100000 is outside");
    }
}

TEST(TokenizerStream, HoldsSplitCharactersUntilComplete) {
    test::TempDir dir;
    const SmallVocab v;
    const auto tok = v.load(dir);
    tokenizer::StreamDecoder stream(tok, Control::kSkip);
    // 😀 = F0 9F 98 80 as four byte tokens.
    EXPECT_EQ(stream.push(tok.byte_token(0xF0)), "");
    EXPECT_EQ(stream.push(tok.byte_token(0x9F)), "");
    EXPECT_EQ(stream.push(tok.byte_token(0x98)), "");
    EXPECT_EQ(stream.pending(), 3u);
    EXPECT_EQ(stream.push(tok.byte_token(0x80)), "\xF0\x9F\x98\x80");
    EXPECT_EQ(stream.pending(), 0u);
    // Text before a partial character comes out at once; the partial part waits.
    EXPECT_EQ(stream.push_bytes("ok\xE2\x82"), "ok");
    EXPECT_EQ(stream.push(v.end), "");  // a control token, skipped, does not disturb it
    EXPECT_EQ(stream.push_bytes("\xAC!"), "\xE2\x82\xAC!");
    EXPECT_EQ(stream.flush(), "");
}

TEST(TokenizerStream, InvalidBytesBecomeReplacementCharacters) {
    test::TempDir dir;
    const auto tok = SmallVocab().load(dir);
    tokenizer::StreamDecoder stream(tok, Control::kRender);
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(stream.push_bytes("\xFF"), fffd);  // can never start a character
    EXPECT_EQ(stream.push_bytes("\xE2"), "");
    EXPECT_EQ(stream.push_bytes("A"), fffd + "A");  // the sequence broke off
    EXPECT_EQ(stream.push_bytes("\xF0\x9F"), "");
    EXPECT_EQ(stream.flush(), fffd);  // incomplete at the end of the stream
    EXPECT_EQ(stream.pending(), 0u);
    EXPECT_EQ(stream.push(tok.find_token("<|end|>").value()), "<|end|>");
}

}  // namespace
}  // namespace strata
