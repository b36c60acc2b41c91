// The chat templates of the DeepSeek, Llama 3 and ChatML families, written out by hand. Each
// render_* function follows one Jinja template line by line; the comments name the Jinja they
// stand for, so that a difference can be traced back. tests/chat_template_test.cpp renders the
// same conversations with the Jinja templates themselves (@huggingface/jinja) and compares.
#include "runtime/chat/template.h"

#include <algorithm>
#include <array>

#include "runtime/error.h"

namespace strata::chat {
namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

struct FamilyName {
    Family family;
    std::string_view name;
};
constexpr std::array<FamilyName, 4> kFamilyNames = {{
    {Family::kDeepSeekR1, "deepseek-r1"},
    {Family::kDeepSeekV3, "deepseek-v3"},
    {Family::kLlama3, "llama3"},
    {Family::kChatML, "chatml"},
}};

// The length of the UTF-8 character at s[i] when it is one of the characters Python's
// str.isspace() accepts (what Jinja's `trim` strips), else 0. Python counts U+001C..U+001F and
// U+0085 too; both are here, so that trim agrees with the reference implementation.
size_t space_at(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    const uint8_t c = b(i);
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) return 1;
    if (c == 0xC2 && i + 1 < s.size() && (b(i + 1) == 0x85 || b(i + 1) == 0xA0)) return 2;
    if (c == 0xE1 && i + 2 < s.size() && b(i + 1) == 0x9A && b(i + 2) == 0x80) return 3;  // U+1680
    if (c == 0xE2 && i + 2 < s.size()) {
        const uint8_t c1 = b(i + 1), c2 = b(i + 2);
        if (c1 == 0x80 && (c2 <= 0x8A || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF)) return 3;
        if (c1 == 0x81 && c2 == 0x9F) return 3;  // U+205F
    }
    if (c == 0xE3 && i + 2 < s.size() && b(i + 1) == 0x80 && b(i + 2) == 0x80) return 3;  // U+3000
    return 0;
}

// Jinja's `trim` filter (Python's str.strip()).
std::string_view trim(std::string_view s) {
    size_t begin = 0;
    while (begin < s.size()) {
        const size_t n = space_at(s, begin);
        if (n == 0) break;
        begin += n;
    }
    // Scan forward for the end: a character's length is only known from its first byte.
    size_t end = begin;
    for (size_t i = begin; i < s.size();) {
        const size_t n = space_at(s, i);
        if (n == 0) {
            const auto c = static_cast<uint8_t>(s[i]);
            i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            end = std::min(i, s.size());
        } else {
            i += n;
        }
    }
    return s.substr(begin, end - begin);
}

// Python's str.lstrip / rstrip / strip with one character to strip.
std::string_view lstrip(std::string_view s, char c) {
    const size_t i = s.find_first_not_of(c);
    return i == std::string_view::npos ? std::string_view() : s.substr(i);
}
std::string_view rstrip(std::string_view s, char c) {
    const size_t i = s.find_last_not_of(c);
    return i == std::string_view::npos ? std::string_view() : s.substr(0, i + 1);
}
std::string_view strip(std::string_view s, char c) {
    return rstrip(lstrip(s, c), c);
}

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

}  // namespace

std::string_view role_name(Role role) {
    switch (role) {
        case Role::kSystem:
            return "system";
        case Role::kUser:
            return "user";
        case Role::kAssistant:
            return "assistant";
    }
    return "?";
}

std::string_view family_name(Family family) {
    for (const auto& f : kFamilyNames)
        if (f.family == family) return f.name;
    return "?";
}

std::string family_names() {
    std::string out;
    for (const auto& f : kFamilyNames) {
        if (!out.empty()) out += ", ";
        out += f.name;
    }
    return out;
}

Family parse_family(std::string_view name) {
    for (const auto& f : kFamilyNames)
        if (f.name == name) return f.family;
    throw UsageError(fmt::format("--chat-template: unknown template '{}', expected one of {}", name,
                                 family_names()));
}

std::string_view strip_reasoning(std::string_view content) {
    const size_t close = content.rfind(kThinkClose);
    return close == std::string_view::npos ? content : content.substr(close + kThinkClose.size());
}

std::vector<Message> fold_system_into_user(std::span<const Message> messages) {
    std::string system;
    for (const Message& m : messages) {
        if (m.role != Role::kSystem) continue;
        if (!system.empty()) system += "\n\n";
        system += m.content;
    }
    std::vector<Message> out;
    bool folded = system.empty();
    for (const Message& m : messages) {
        if (m.role == Role::kSystem) continue;
        if (!folded && m.role == Role::kUser) {
            out.push_back({Role::kUser, m.content.empty() ? system : system + "\n\n" + m.content});
            folded = true;
            continue;
        }
        out.push_back(m);
    }
    if (!folded) out.insert(out.begin(), Message{Role::kUser, system});
    return out;
}

ChatTemplate::ChatTemplate(Family family, std::string bos_text, std::string default_system)
    : family_(family), bos_text_(std::move(bos_text)), default_system_(std::move(default_system)) {}

std::string ChatTemplate::render(std::span<const Message> messages,
                                 bool add_generation_prompt) const {
    switch (family_) {
        case Family::kDeepSeekR1:
        case Family::kDeepSeekV3:
            return render_deepseek(messages, add_generation_prompt);
        case Family::kLlama3:
            return render_llama3(messages, add_generation_prompt);
        case Family::kChatML:
            return render_chatml(messages, add_generation_prompt);
    }
    return {};
}

// DeepSeek-V3's template and R1's (as in DeepSeek-R1-Distill-Qwen-32B), without the tool parts.
// They differ in three places: V3 joins every system message with a blank line where R1 keeps
// the last one; R1 writes an earlier answer as `content.split('</think>')[-1]`; R1's generation
// prompt is '<｜Assistant｜><think>\n'.
std::string ChatTemplate::render_deepseek(std::span<const Message> messages,
                                          bool add_generation_prompt) const {
    const bool r1 = family_ == Family::kDeepSeekR1;
    std::string system;
    bool first_system = true;
    for (const Message& m : messages) {
        if (m.role != Role::kSystem) continue;
        if (r1) {
            system = m.content;  // {% set ns.system_prompt = message['content'] %}
        } else {
            if (!first_system) system += "\n\n";
            system += m.content;
            first_system = false;
        }
    }
    std::string out = bos_text_ + system;  // {{bos_token}}{{ns.system_prompt}}
    for (const Message& m : messages) {
        if (m.role == Role::kUser) {
            out += "<｜User｜>";
            out += m.content;
        } else if (m.role == Role::kAssistant) {
            out += "<｜Assistant｜>";
            out += r1 ? strip_reasoning(m.content) : std::string_view(m.content);
            out += "<｜end▁of▁sentence｜>";
        }
    }
    if (add_generation_prompt) out += r1 ? "<｜Assistant｜><think>\n" : "<｜Assistant｜>";
    return out;
}

// Llama 3's: every message is '<|start_header_id|>' + role + '<|end_header_id|>\n\n' +
// content|trim + '<|eot_id|>', the first one preceded by bos_token.
std::string ChatTemplate::render_llama3(std::span<const Message> messages,
                                        bool add_generation_prompt) const {
    std::string out;
    bool first = true;
    for (const Message& m : messages) {
        if (first) out += bos_text_;
        first = false;
        out += "<|start_header_id|>";
        out += role_name(m.role);
        out += "<|end_header_id|>\n\n";
        out += trim(m.content);
        out += "<|eot_id|>";
    }
    if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
}

// Qwen3's template without tools (Qwen 2.5's gives the same text for these conversations, except
// that it writes its default system prompt when there is none, which default_system carries).
std::string ChatTemplate::render_chatml(std::span<const Message> messages,
                                        bool add_generation_prompt) const {
    std::string out;
    const auto turn = [&out](std::string_view role, std::string_view text) {
        out += "<|im_start|>";
        out += role;
        out += '\n';
        out += text;
        out += "<|im_end|>\n";
    };
    if (!messages.empty() && messages.front().role == Role::kSystem)
        turn("system", messages.front().content);
    else if (!default_system_.empty())
        turn("system", default_system_);

    // ns.last_query_index: the last user message that is not a tool response; answers after it
    // keep their reasoning (they belong to the turn being continued).
    size_t last_query = messages.empty() ? 0 : messages.size() - 1;
    for (size_t i = messages.size(); i-- > 0;) {
        const std::string& c = messages[i].content;
        if (messages[i].role == Role::kUser &&
            !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
            last_query = i;
            break;
        }
    }
    for (size_t i = 0; i < messages.size(); ++i) {
        const Message& m = messages[i];
        if (m.role == Role::kUser || (m.role == Role::kSystem && i > 0)) {
            turn(role_name(m.role), m.content);
            continue;
        }
        if (m.role != Role::kAssistant) continue;
        std::string_view content = m.content;
        std::string_view reasoning;
        if (content.find(kThinkClose) != std::string_view::npos) {
            // content.split('</think>')[-1].lstrip('\n') and
            // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
            content = lstrip(strip_reasoning(m.content), '\n');
            std::string_view before =
                rstrip(std::string_view(m.content).substr(0, m.content.find(kThinkClose)), '\n');
            const size_t open = before.rfind(kThinkOpen);
            if (open != std::string_view::npos) before = before.substr(open + kThinkOpen.size());
            reasoning = lstrip(before, '\n');
        }
        out += "<|im_start|>assistant\n";
        if (i > last_query && (i + 1 == messages.size() || !reasoning.empty())) {
            out += "<think>\n";
            out += strip(reasoning, '\n');
            out += "\n</think>\n\n";
            out += lstrip(content, '\n');
        } else {
            out += content;
        }
        out += "<|im_end|>\n";
    }
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
}

}  // namespace strata::chat
