// The Unicode properties the pre-tokenizer patterns test (general categories from utf8proc, the
// White_Space set), text decoded into code points with those properties, and NFC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::tokenizer {

// Classes of the patterns' \p{..} and \s, as bits of CodePoint::flags.
enum CharClass : uint8_t {
    kLetter = 1 << 0,  // \p{L}: Lu Ll Lt Lm Lo
    kNumber = 1 << 1,  // \p{N}: Nd Nl No
    kPunct = 1 << 2,   // \p{P}: Pc Pd Ps Pe Pi Pf Po
    kSymbol = 1 << 3,  // \p{S}: Sm Sc Sk So
    kMark = 1 << 4,    // \p{M}: Mn Mc Me
    kSpace = 1 << 5,   // \s as Unicode White_Space (Oniguruma's and llama.cpp's \s)
};

// The classes of one code point. \s follows Unicode White_Space, which has U+0085 and lacks
// U+FEFF; JavaScript's \s (transformers.js) is the reverse on exactly those two.
uint8_t char_class(uint32_t cp);

// A code point of a decoded text. An ill-formed UTF-8 byte decodes to one entry of its own with
// cp = kInvalidCodePoint and no class bits, so that it stays in the text as it is (its byte is
// kept) and falls in the patterns' "anything else" branches.
inline constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFF;
struct CodePoint {
    uint32_t cp = 0;
    uint8_t flags = 0;  // CharClass bits
    size_t offset = 0;  // of its first byte in the text
};

// Decodes `text` into `out` (cleared first): one entry per code point, then a sentinel entry
// whose offset is text.size(), so that entry i spans [out[i].offset, out[i + 1].offset).
void decode_code_points(std::string_view text, std::vector<CodePoint>& out);

// Unicode Normalization Form C, by utf8proc. Ill-formed bytes are kept as they are and end a
// normalization run (nothing composes across them).
std::string nfc(std::string_view text);

}  // namespace strata::tokenizer
