// Chat templates: a conversation written out the way a model family was trained to read it.
//
// Each family's template is hand-written here (no Jinja engine), equal to the Jinja template the
// family's tokenizer_config.json carries for conversations of system, user and assistant turns
// (tools are out of scope). The text contains the special tokens as text ("<｜User｜>"); it is
// tokenized whole with special-token parsing on, as Hugging Face's apply_chat_template does.
//
//   const ChatTemplate t = detect_template(file, tokenizer).tmpl;
//   std::string prompt = t.render(messages, /*add_generation_prompt=*/true);
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata::chat {

enum class Role : uint8_t { kSystem, kUser, kAssistant };

struct Message {
    Role role;
    std::string content;
};

std::string_view role_name(Role role);

enum class Family : uint8_t {
    // DeepSeek-R1 and its distills (Llama, Qwen): BOS, the system prompt, <｜User｜>…
    // <｜Assistant｜>…<｜end▁of▁sentence｜>; earlier answers lose their <think>…</think> part and
    // the generation prompt opens a <think> block, as the R1 model card asks.
    kDeepSeekR1,
    // DeepSeek-V3 (and V2.5) chat: the same markers, answers kept whole, no <think>.
    kDeepSeekV3,
    // Llama 3 Instruct: <|start_header_id|>role<|end_header_id|>\n\n trimmed text <|eot_id|>.
    kLlama3,
    // ChatML (Qwen 2/2.5/3): <|im_start|>role\n text <|im_end|>\n; earlier answers lose their
    // reasoning as Qwen3's template does.
    kChatML,
};

std::string_view family_name(Family family);  // "deepseek-r1", "deepseek-v3", "llama3", "chatml"
// "deepseek-r1, deepseek-v3, llama3, chatml": for help texts and errors.
std::string family_names();
// A --chat-template NAME; throws strata::UsageError listing the names when it is none of them.
Family parse_family(std::string_view name);

class ChatTemplate {
  public:
    // `bos_text`: the BOS token's text, written first by the DeepSeek and Llama 3 templates
    // (empty when the vocabulary has none). `default_system`: the system prompt the template
    // writes when the conversation has none (Qwen 2.5's "You are Qwen, …"); empty for none.
    explicit ChatTemplate(Family family, std::string bos_text = {},
                          std::string default_system = {});

    Family family() const { return family_; }
    const std::string& bos_text() const { return bos_text_; }
    const std::string& default_system() const { return default_system_; }

    // The conversation as the family's template writes it; with `add_generation_prompt`, followed
    // by the opening of the assistant's next turn.
    std::string render(std::span<const Message> messages, bool add_generation_prompt) const;

    // Whether the generation prompt leaves the model inside a <think> block (R1), so that what it
    // writes first is reasoning.
    bool opens_reasoning() const { return family_ == Family::kDeepSeekR1; }
    // Whether the model card asks for the system prompt to be written into the first user turn
    // instead (R1: "avoid adding a system prompt; all instructions should be contained within
    // the user prompt").
    bool prefers_system_in_user_turn() const { return family_ == Family::kDeepSeekR1; }

  private:
    std::string render_deepseek(std::span<const Message> messages,
                                bool add_generation_prompt) const;
    std::string render_llama3(std::span<const Message> messages, bool add_generation_prompt) const;
    std::string render_chatml(std::span<const Message> messages, bool add_generation_prompt) const;

    Family family_;
    std::string bos_text_;
    std::string default_system_;
};

// The messages with every system message removed and their text (joined by a blank line) put in
// front of the first user message, separated from it by a blank line. Without a user message the
// system text becomes one. What R1 asks for; see ChatTemplate::prefers_system_in_user_turn.
std::vector<Message> fold_system_into_user(std::span<const Message> messages);

// The answer part of an assistant turn: what follows the last "</think>", or all of it.
std::string_view strip_reasoning(std::string_view content);

}  // namespace strata::chat
