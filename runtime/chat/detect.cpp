// Chat template detection. The template text is what the model's authors shipped, so it decides
// first; the vocabulary's special tokens decide for files converted without a template.
#include "runtime/chat/detect.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "runtime/error.h"

namespace strata::chat {
namespace {

// The marker that identifies each family, in the template text and in the vocabulary.
struct Marker {
    std::string_view text;
    Family family;
};
constexpr std::array<Marker, 4> kMarkers = {{
    {"<｜User｜>", Family::kDeepSeekR1},
    {"<｜Assistant｜>", Family::kDeepSeekR1},
    {"<|start_header_id|>", Family::kLlama3},
    {"<|im_start|>", Family::kChatML},
}};

// The special token the family's template cannot do without (checked in the vocabulary).
std::string_view required_token(Family family) {
    switch (family) {
        case Family::kDeepSeekR1:
        case Family::kDeepSeekV3:
            return "<｜User｜>";
        case Family::kLlama3:
            return "<|start_header_id|>";
        case Family::kChatML:
            return "<|im_start|>";
    }
    return {};
}

// Qwen 2.5's template writes this system prompt when the conversation has none.
constexpr std::string_view kQwenDefaultSystem =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// R1 or V3, for a file whose template or vocabulary is DeepSeek's.
Family deepseek_flavour(std::string_view chat_template, std::string_view model_name) {
    if (chat_template.find("<think>") != std::string_view::npos ||
        chat_template.find("</think>") != std::string_view::npos)
        return Family::kDeepSeekR1;
    const std::string name = lower(model_name);
    if (name.find("r1") == std::string::npos &&
        (name.find("v3") != std::string::npos || name.find("v2") != std::string::npos))
        return Family::kDeepSeekV3;
    return Family::kDeepSeekR1;
}

std::string bos_text(const tokenizer::Tokenizer& tok) {
    const int32_t bos = tok.bos();
    return bos < 0 ? std::string() : std::string(tok.token_text(bos));
}

}  // namespace

DetectedTemplate detect_template(const gguf::File& file, const tokenizer::Tokenizer& tok,
                                 std::optional<Family> forced) {
    const std::string_view chat_template = file.get_str_or("tokenizer.chat_template", "");
    const std::string_view model_name = file.get_str_or("general.name", "");

    std::optional<Family> family = forced;
    std::string reason;
    bool fallback = false;
    if (family) {
        reason = "--chat-template";
    } else {
        for (const Marker& m : kMarkers) {
            if (chat_template.find(m.text) != std::string_view::npos) {
                family = m.family;
                reason = "tokenizer.chat_template";
                break;
            }
        }
    }
    if (!family) {
        for (const Marker& m : kMarkers) {
            if (tok.find_token(m.text)) {
                family = m.family;
                reason =
                    chat_template.empty()
                        ? fmt::format("no tokenizer.chat_template; the vocabulary has {}", m.text)
                        : fmt::format(
                              "tokenizer.chat_template not recognised; the vocabulary has {}",
                              m.text);
                break;
            }
        }
    }
    if (!family) {
        family = Family::kChatML;
        fallback = true;
        reason = chat_template.empty()
                     ? "no tokenizer.chat_template and no known chat tokens in the vocabulary: "
                       "assuming ChatML (choose with --chat-template)"
                     : "tokenizer.chat_template not recognised and no known chat tokens in the "
                       "vocabulary: assuming ChatML (choose with --chat-template)";
    }
    if (!forced && *family == Family::kDeepSeekR1)
        family = deepseek_flavour(chat_template, model_name);
    if (!tok.find_token(required_token(*family)))
        reason += fmt::format("; the vocabulary has no {} token, so the markers are plain text",
                              required_token(*family));

    std::string default_system;
    if (*family == Family::kChatML &&
        chat_template.find(kQwenDefaultSystem) != std::string_view::npos)
        default_system = kQwenDefaultSystem;
    return {ChatTemplate(*family, bos_text(tok), std::move(default_system)), std::move(reason),
            fallback};
}

}  // namespace strata::chat
