// GPT-2's byte-level alphabet: a reversible map from the 256 byte values to printable code points,
// in which byte-level BPE vocabularies store their tokens ("Ġthe" is " the").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace strata::tokenizer {

// The code point that stands for byte `b`: printable Latin-1 bytes (0x21..0x7E, 0xA1..0xAC,
// 0xAE..0xFF) stand for themselves, the other 68 take U+0100.. in byte order.
uint32_t byte_to_code_point(uint8_t b);

// The byte a code point stands for, or -1 when it is not in the alphabet.
int code_point_to_byte(uint32_t cp);

// Bytes → their byte-level spelling (UTF-8).
std::string byte_level_encode(std::string_view bytes);

// A vocabulary string → the bytes it stands for. Returns false if some character is not in the
// alphabet (then `out` is unspecified).
bool byte_level_decode(std::string_view text, std::string& out);

}  // namespace strata::tokenizer
