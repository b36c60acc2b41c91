// UTF-8 decoding and validation: one sequence at a time, the way the streaming detokenizer and
// the pre-tokenizers need it (an ill-formed byte never aborts, it is reported and skipped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::tokenizer {

struct Utf8Sequence {
    enum Status : uint8_t {
        kValid,       // `cp` holds the code point, `len` its bytes (1..4)
        kIncomplete,  // the bytes so far are a valid prefix; more are needed
        kInvalid,     // `len` bytes (>= 1) form a maximal ill-formed subpart: one U+FFFD
    };
    Status status = kInvalid;
    uint32_t cp = 0;
    size_t len = 1;
};

// Decodes the sequence that starts at s[i] (i < s.size()), by the Unicode definition of
// well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. An ill-formed
// sequence is measured as a "maximal subpart" (Unicode 15, §3.9), so that replacing each one with
// U+FFFD gives the same result as a conforming decoder.
Utf8Sequence decode_utf8(std::string_view s, size_t i);

// Appends the UTF-8 encoding of `cp` (cp <= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cp);

// True when `s` is well-formed UTF-8 throughout.
bool is_valid_utf8(std::string_view s);

// `s` with every ill-formed subpart (including an incomplete sequence at the end) replaced by
// U+FFFD.
std::string sanitize_utf8(std::string_view s);

}  // namespace strata::tokenizer
