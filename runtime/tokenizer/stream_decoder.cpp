#include "runtime/tokenizer/stream_decoder.h"

#include "runtime/tokenizer/utf8.h"

namespace strata::tokenizer {

std::string StreamDecoder::push(int32_t id) {
    return push_bytes(tokenizer_.piece(id, control_));
}

std::string StreamDecoder::push_bytes(std::string_view bytes) {
    pending_.append(bytes);
    std::string out;
    size_t i = 0;
    while (i < pending_.size()) {
        const Utf8Sequence seq = decode_utf8(pending_, i);
        if (seq.status == Utf8Sequence::kIncomplete) break;  // wait for the rest
        if (seq.status == Utf8Sequence::kValid)
            out.append(pending_, i, seq.len);
        else
            append_utf8(out, 0xFFFD);
        i += seq.len;
    }
    pending_.erase(0, i);
    return out;
}

std::string StreamDecoder::flush() {
    std::string out = pending_.empty() ? std::string() : sanitize_utf8(pending_);
    pending_.clear();
    return out;
}

}  // namespace strata::tokenizer
