#include "runtime/tokenizer/byte_level.h"

#include <array>

#include "runtime/tokenizer/utf8.h"

namespace strata::tokenizer {

namespace {

struct Tables {
    std::array<uint32_t, 256> to_cp{};   // byte → code point
    std::array<int16_t, 324> to_byte{};  // code point (< 0x144) → byte, or -1
};

// The alphabet only reaches U+0143 (256 + 67), so the reverse map is a small array.
constexpr uint32_t kAlphabetEnd = 0x144;

constexpr Tables make_tables() {
    Tables t;
    for (auto& b : t.to_byte) b = -1;
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable =
            (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t.to_cp[b] = printable ? b : next++;
        t.to_byte[t.to_cp[b]] = static_cast<int16_t>(b);
    }
    return t;
}

constexpr Tables kTables = make_tables();
static_assert(kTables.to_cp[0x20] == 0x120, "space is Ġ");
static_assert(kTables.to_cp[0xAD] == 0x143, "the last remapped byte ends the alphabet");

}  // namespace

uint32_t byte_to_code_point(uint8_t b) {
    return kTables.to_cp[b];
}

int code_point_to_byte(uint32_t cp) {
    return cp < kAlphabetEnd ? kTables.to_byte[cp] : -1;
}

std::string byte_level_encode(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) append_utf8(out, byte_to_code_point(static_cast<uint8_t>(c)));
    return out;
}

bool byte_level_decode(std::string_view text, std::string& out) {
    out.clear();
    for (size_t i = 0; i < text.size();) {
        const Utf8Sequence seq = decode_utf8(text, i);
        if (seq.status != Utf8Sequence::kValid) return false;
        const int b = code_point_to_byte(seq.cp);
        if (b < 0) return false;
        out += static_cast<char>(b);
        i += seq.len;
    }
    return true;
}

}  // namespace strata::tokenizer
