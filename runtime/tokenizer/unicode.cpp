#include "runtime/tokenizer/unicode.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <memory>

#include "runtime/tokenizer/utf8.h"

namespace strata::tokenizer {

namespace {

bool is_white_space(uint32_t cp) {
    // Unicode White_Space (PropList.txt); unchanged since Unicode 6.3.
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

uint8_t classify(uint32_t cp) {
    uint8_t flags = is_white_space(cp) ? kSpace : 0;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
            flags |= kLetter;
            break;
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            flags |= kNumber;
            break;
        case UTF8PROC_CATEGORY_PC:
        case UTF8PROC_CATEGORY_PD:
        case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI:
        case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO:
            flags |= kPunct;
            break;
        case UTF8PROC_CATEGORY_SM:
        case UTF8PROC_CATEGORY_SC:
        case UTF8PROC_CATEGORY_SK:
        case UTF8PROC_CATEGORY_SO:
            flags |= kSymbol;
            break;
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
            flags |= kMark;
            break;
        default:
            break;
    }
    return flags;
}

// Classes of the Basic Multilingual Plane, looked up once: nearly every code point of real text
// is there, and a table read is cheaper than utf8proc's two-level lookup plus the switch.
const std::array<uint8_t, 0x10000>& bmp_classes() {
    static const auto table = [] {
        auto t = std::make_unique<std::array<uint8_t, 0x10000>>();
        for (uint32_t cp = 0; cp < 0x10000; ++cp) (*t)[cp] = classify(cp);
        return t;
    }();
    return *table;
}

// Normalizes one well-formed run; returns false (leaving `out` untouched) if utf8proc refuses it.
bool append_nfc(std::string_view run, std::string& out) {
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                     static_cast<utf8proc_ssize_t>(run.size()), &mapped,
                     static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) return false;
    out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
    std::free(mapped);
    return true;
}

}  // namespace

uint8_t char_class(uint32_t cp) {
    if (cp < 0x10000) return bmp_classes()[cp];
    return cp <= 0x10FFFF ? classify(cp) : 0;
}

void decode_code_points(std::string_view text, std::vector<CodePoint>& out) {
    out.clear();
    out.reserve(text.size() + 1);
    const auto& bmp = bmp_classes();
    for (size_t i = 0; i < text.size();) {
        const auto b = static_cast<uint8_t>(text[i]);
        if (b < 0x80) {  // ASCII fast path
            out.push_back({b, bmp[b], i});
            ++i;
            continue;
        }
        const Utf8Sequence seq = decode_utf8(text, i);
        if (seq.status == Utf8Sequence::kValid) {
            out.push_back({seq.cp, char_class(seq.cp), i});
            i += seq.len;
        } else {
            // One entry per ill-formed byte: each stays its own byte in the output.
            out.push_back({kInvalidCodePoint, 0, i});
            ++i;
        }
    }
    out.push_back({0, 0, text.size()});
}

std::string nfc(std::string_view text) {
    // Text below U+0300 is already NFC: no code point there decomposes canonically, and the
    // first that can combine with a preceding character is U+0300.
    std::string out;
    out.reserve(text.size());
    size_t run_start = 0;
    bool run_needs_work = false;
    const auto flush_run = [&](size_t end) {
        const std::string_view run = text.substr(run_start, end - run_start);
        if (!run_needs_work || !append_nfc(run, out)) out.append(run);
        run_needs_work = false;
    };
    for (size_t i = 0; i < text.size();) {
        const auto b = static_cast<uint8_t>(text[i]);
        if (b < 0x80) {
            ++i;
            continue;
        }
        const Utf8Sequence seq = decode_utf8(text, i);
        if (seq.status == Utf8Sequence::kValid) {
            run_needs_work |= seq.cp >= 0x300;
            i += seq.len;
            continue;
        }
        flush_run(i);
        out.append(text.substr(i, 1));
        run_start = ++i;
    }
    flush_run(text.size());
    return out;
}

}  // namespace strata::tokenizer
