#include "runtime/tokenizer/pretokenizer.h"

#include "runtime/error.h"

namespace strata::tokenizer {

// Each matcher below returns the length (in code points) of the match of one pattern at `pos`,
// or 0 when it does not match there. `end` is the end of the current piece: the patterns see it
// as the end of the string, as the reference applies each split to each piece separately.
namespace {

bool has(const CodePoint& c, uint8_t mask) {
    return (c.flags & mask) != 0;
}
bool is_cr_or_lf(const CodePoint& c) {
    return c.cp == '\r' || c.cp == '\n';
}
bool is_ascii_alpha(const CodePoint& c) {
    return (c.cp >= 'a' && c.cp <= 'z') || (c.cp >= 'A' && c.cp <= 'Z');
}
bool is_ascii_punct(const CodePoint& c) {  // !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
    return (c.cp >= 0x21 && c.cp <= 0x2F) || (c.cp >= 0x3A && c.cp <= 0x40) ||
           (c.cp >= 0x5B && c.cp <= 0x60) || (c.cp >= 0x7B && c.cp <= 0x7E);
}
uint32_t ascii_lower(uint32_t cp) {
    return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

// The first index >= pos (and <= end) whose code point fails `pred`.
template <typename Pred>
size_t run_end(const CodePoint* c, size_t pos, size_t end, Pred pred) {
    while (pos < end && pred(c[pos])) ++pos;
    return pos;
}

// The three whitespace alternatives that end both families' patterns, at a \s code point:
//   \s*[\r\n]+  |  \s+(?!\S)  |  \s+
// With backtracking, the first takes the whitespace run up to and including its last CR/LF; the
// second takes the run but leaves its last character to prefix the next word (unless the run
// ends the string, or is one character long, when the third takes it all).
size_t match_whitespace(const CodePoint* c, size_t pos, size_t end) {
    size_t last_newline = end;
    size_t r = pos;
    for (; r < end && has(c[r], kSpace); ++r)
        if (is_cr_or_lf(c[r])) last_newline = r;
    if (last_newline != end) return last_newline + 1 - pos;
    if (r == end || r - pos == 1) return r - pos;
    return r - pos - 1;
}

// Llama 3 (max_digits 3) and Qwen2 (max_digits 1):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,max_digits}
//   | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// The contractions are matched case-insensitively in ASCII only, as the reference
// (transformers.js rewrites (?i:..) as [sS] etc.) does.
size_t match_tiktoken(const CodePoint* c, size_t pos, size_t end, size_t max_digits) {
    const CodePoint& c0 = c[pos];
    const bool has_next = pos + 1 < end;
    if (c0.cp == '\'' && has_next) {
        const uint32_t a = ascii_lower(c[pos + 1].cp);
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if (pos + 2 < end) {
            const uint32_t b = ascii_lower(c[pos + 2].cp);
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return 3;
        }
    }
    const auto letter = [](const CodePoint& x) { return has(x, kLetter); };
    if (letter(c0)) return run_end(c, pos, end, letter) - pos;
    if (!is_cr_or_lf(c0) && !has(c0, kNumber) && has_next && letter(c[pos + 1]))
        return run_end(c, pos + 1, end, letter) - pos;
    if (has(c0, kNumber)) {
        size_t k = pos;
        while (k < end && k - pos < max_digits && has(c[k], kNumber)) ++k;
        return k - pos;
    }
    const auto other = [](const CodePoint& x) { return !has(x, kSpace | kLetter | kNumber); };
    const bool space_then_other = c0.cp == ' ' && has_next && other(c[pos + 1]);
    if (space_then_other || other(c0)) {
        const size_t k = run_end(c, space_then_other ? pos + 1 : pos, end, other);
        return run_end(c, k, end, is_cr_or_lf) - pos;
    }
    if (has(c0, kSpace)) return match_whitespace(c, pos, end);
    return 0;
}

// DeepSeek-V3's first split: \p{N}{1,3}.
size_t match_digits3(const CodePoint* c, size_t pos, size_t end) {
    size_t k = pos;
    while (k < end && k - pos < 3 && has(c[k], kNumber)) ++k;
    return k - pos;
}

// DeepSeek-V3's second split: [一-龥぀-ゟ゠-ヿ]+ (CJK U+4E00..U+9FA5, hiragana and katakana).
size_t match_cjk(const CodePoint* c, size_t pos, size_t end) {
    const auto cjk = [](const CodePoint& x) {
        return (x.cp >= 0x4E00 && x.cp <= 0x9FA5) || (x.cp >= 0x3040 && x.cp <= 0x30FF);
    };
    return run_end(c, pos, end, cjk) - pos;
}

// DeepSeek-V3's main split:
//   [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
//   | ?[\p{P}\p{S}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// Numbers match none of these; by now they are pieces of their own, which stay whole.
size_t match_deepseek(const CodePoint* c, size_t pos, size_t end) {
    const CodePoint& c0 = c[pos];
    const bool has_next = pos + 1 < end;
    if (is_ascii_punct(c0) && has_next && is_ascii_alpha(c[pos + 1]))
        return run_end(c, pos + 1, end, is_ascii_alpha) - pos;
    const auto letter_or_mark = [](const CodePoint& x) { return has(x, kLetter | kMark); };
    if (!is_cr_or_lf(c0) && !has(c0, kLetter | kPunct | kSymbol) && has_next &&
        letter_or_mark(c[pos + 1]))
        return run_end(c, pos + 1, end, letter_or_mark) - pos;
    if (letter_or_mark(c0)) return run_end(c, pos, end, letter_or_mark) - pos;
    const auto punct = [](const CodePoint& x) { return has(x, kPunct | kSymbol); };
    const bool space_then_punct = c0.cp == ' ' && has_next && punct(c[pos + 1]);
    if (space_then_punct || punct(c0)) {
        const size_t k = run_end(c, space_then_punct ? pos + 1 : pos, end, punct);
        return run_end(c, k, end, is_cr_or_lf) - pos;
    }
    if (has(c0, kSpace)) return match_whitespace(c, pos, end);
    return 0;
}

// A Split pre-tokenizer with behavior "Isolated": every match is a piece, and so is every stretch
// between matches. Calls emit(begin, end) in code-point indices.
template <typename Match, typename Emit>
void split_isolated(const CodePoint* c, size_t begin, size_t end, Match match, Emit&& emit) {
    size_t gap = begin;
    size_t pos = begin;
    while (pos < end) {
        const size_t len = match(c, pos, end);
        if (len == 0) {
            ++pos;
            continue;
        }
        if (gap < pos) emit(gap, pos);
        emit(pos, pos + len);
        pos += len;
        gap = pos;
    }
    if (gap < end) emit(gap, end);
}

}  // namespace

PreTokenizerSpec pre_tokenizer_from_name(std::string_view name) {
    if (name == "deepseek-v3") return {PreTokenizer::kDeepSeekV3, false, false};
    if (name == "llama-bpe") return {PreTokenizer::kLlama3, false, true};
    // R1-Distill-Qwen's tokenizer.json is Qwen2.5's: NFC, then the Qwen2 pattern.
    if (name == "qwen2" || name == "deepseek-r1-qwen") return {PreTokenizer::kQwen2, true, false};
    fail(
        "tokenizer.ggml.pre: unsupported pre-tokenizer \"{}\" (supported: deepseek-v3, "
        "llama-bpe, qwen2, deepseek-r1-qwen)",
        name);
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<CodePoint>& scratch,
                  std::vector<Piece>& out) {
    decode_code_points(text, scratch);
    const CodePoint* c = scratch.data();
    const size_t n = scratch.size() - 1;  // without the sentinel
    const auto emit = [&](size_t b, size_t e) { out.push_back({c[b].offset, c[e].offset}); };
    switch (kind) {
        case PreTokenizer::kDeepSeekV3:
            // A Sequence of three splits: each one splits every piece of the one before.
            split_isolated(c, 0, n, match_digits3, [&](size_t b1, size_t e1) {
                split_isolated(c, b1, e1, match_cjk, [&](size_t b2, size_t e2) {
                    split_isolated(c, b2, e2, match_deepseek, emit);
                });
            });
            break;
        case PreTokenizer::kLlama3:
            split_isolated(
                c, 0, n,
                [](const CodePoint* p, size_t pos, size_t end) {
                    return match_tiktoken(p, pos, end, 3);
                },
                emit);
            break;
        case PreTokenizer::kQwen2:
            split_isolated(
                c, 0, n,
                [](const CodePoint* p, size_t pos, size_t end) {
                    return match_tiktoken(p, pos, end, 1);
                },
                emit);
            break;
    }
}

}  // namespace strata::tokenizer
