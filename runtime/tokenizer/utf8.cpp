#include "runtime/tokenizer/utf8.h"

namespace strata::tokenizer {

namespace {

// The range a continuation byte may take right after a lead byte (Unicode 15, table 3-7); the
// bytes after it are always 0x80..0xBF.
struct LeadRule {
    uint8_t len;        // sequence length, 0 for a byte that cannot start one
    uint8_t second_lo;  // allowed range of the second byte
    uint8_t second_hi;
};

LeadRule lead_rule(uint8_t b) {
    if (b < 0x80) return {1, 0, 0};
    if (b < 0xC2) return {0, 0, 0};  // continuation byte, or an overlong 2-byte lead
    if (b < 0xE0) return {2, 0x80, 0xBF};
    if (b == 0xE0) return {3, 0xA0, 0xBF};  // excludes overlong forms
    if (b == 0xED) return {3, 0x80, 0x9F};  // excludes surrogates
    if (b < 0xF0) return {3, 0x80, 0xBF};
    if (b == 0xF0) return {4, 0x90, 0xBF};  // excludes overlong forms
    if (b < 0xF4) return {4, 0x80, 0xBF};
    if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
    return {0, 0, 0};
}

}  // namespace

Utf8Sequence decode_utf8(std::string_view s, size_t i) {
    const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
    const uint8_t b0 = byte(0);
    const LeadRule rule = lead_rule(b0);
    if (rule.len == 1) return {Utf8Sequence::kValid, b0, 1};
    if (rule.len == 0) return {Utf8Sequence::kInvalid, 0, 1};

    const size_t avail = s.size() - i;
    uint32_t cp = b0 & (0x7Fu >> rule.len);
    for (size_t k = 1; k < rule.len; ++k) {
        if (k >= avail) return {Utf8Sequence::kIncomplete, 0, k};
        const uint8_t b = byte(k);
        const uint8_t lo = k == 1 ? rule.second_lo : 0x80;
        const uint8_t hi = k == 1 ? rule.second_hi : 0xBF;
        if (b < lo || b > hi) return {Utf8Sequence::kInvalid, 0, k};
        cp = (cp << 6) | (b & 0x3Fu);
    }
    return {Utf8Sequence::kValid, cp, rule.len};
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

bool is_valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const Utf8Sequence seq = decode_utf8(s, i);
        if (seq.status != Utf8Sequence::kValid) return false;
        i += seq.len;
    }
    return true;
}

std::string sanitize_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const Utf8Sequence seq = decode_utf8(s, i);
        if (seq.status == Utf8Sequence::kValid)
            out.append(s.substr(i, seq.len));
        else
            append_utf8(out, 0xFFFD);
        i += seq.len;
    }
    return out;
}

}  // namespace strata::tokenizer
