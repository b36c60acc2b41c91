// Which chat template a model file wants: read from tokenizer.chat_template, else from the
// special tokens of its vocabulary, else a stated fallback.
#pragma once

#include <optional>
#include <string>

#include "runtime/chat/template.h"
#include "runtime/gguf.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata::chat {

struct DetectedTemplate {
    ChatTemplate tmpl;
    // One line for the user: where the choice came from ("tokenizer.chat_template",
    // "--chat-template", ...), and any doubt about it.
    std::string reason;
    bool fallback = false;  // nothing in the file named a family: ChatML was assumed
};

// The family is chosen by the first of these that applies:
//  1. `forced` (--chat-template NAME);
//  2. tokenizer.chat_template: "<｜User｜>"/"<｜Assistant｜>" → DeepSeek, "<|start_header_id|>"
//     → Llama 3, "<|im_start|>" → ChatML;
//  3. the vocabulary: a token "<｜User｜>", "<|start_header_id|>" or "<|im_start|>";
//  4. ChatML, with fallback set.
// A DeepSeek file is R1 when its template mentions <think>, else when general.name does not
// name a V2/V3 model without "R1" (the DeepSeek-V3 template is also what R1 files converted
// from the V3 tokenizer carry).
DetectedTemplate detect_template(const gguf::File& file, const tokenizer::Tokenizer& tokenizer,
                                 std::optional<Family> forced = std::nullopt);

}  // namespace strata::chat
