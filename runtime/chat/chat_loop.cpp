#include "runtime/chat/chat_loop.h"

#include <fmt/format.h>

#include <chrono>

namespace strata::chat {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string_view trim_ascii(std::string_view s) {
    const size_t begin = s.find_first_not_of(" \t\r\n");
    if (begin == std::string_view::npos) return {};
    return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

}  // namespace

ChatLoop::ChatLoop(TokenSource& source, const tokenizer::Tokenizer& tokenizer,
                   Conversation& conversation, ChatOptions options, InterruptHandler* interrupts)
    : source_(source),
      tokenizer_(tokenizer),
      conversation_(conversation),
      options_(std::move(options)),
      interrupts_(interrupts) {}

std::string ChatLoop::banner() {
    return "Type a message and press Enter. /reset starts a new conversation, /exit or Ctrl-D "
           "quits. Ctrl-C stops an answer; at the prompt, Ctrl-C twice quits.";
}

TurnStats ChatLoop::answer(std::FILE* out) {
    TurnStats stats;
    // The template writes BOS itself, and the markers are special tokens: no add_special, and
    // special tokens parsed, as apply_chat_template does.
    const std::vector<int32_t> prompt = tokenizer_.encode(conversation_.prompt(), false, true);
    stats.prompt_tokens = static_cast<int64_t>(prompt.size());
    // At least one position must be left for the answer's first token.
    if (stats.prompt_tokens >= source_.n_ctx()) {
        conversation_.drop_last();
        stats.did_not_fit = true;
        stats.end = TurnEnd::kContextFull;
        return stats;
    }

    const auto t0 = Clock::now();
    stats.reused = source_.prefill(prompt);
    stats.prefill_s = seconds_since(t0);

    const auto t1 = Clock::now();
    TurnStream turn(tokenizer_, {conversation_.tmpl().opens_reasoning(), options_.stops});
    TurnDisplay display(out, options_.display);
    std::vector<Span> spans;
    for (;;) {
        spans.clear();
        if (interrupts_ && interrupts_->take()) {
            turn.finish(TurnEnd::kInterrupted, spans);
            break;
        }
        if (options_.max_tokens >= 0 && turn.n_tokens() >= options_.max_tokens) {
            turn.finish(TurnEnd::kLength, spans);
            break;
        }
        const int32_t id = source_.sample();
        if (turn.push(id, spans)) break;
        display.show(spans);
        if (source_.n_past() >= source_.n_ctx()) {
            spans.clear();
            turn.finish(TurnEnd::kContextFull, spans);
            break;
        }
        source_.append(id);
    }
    display.show(spans);
    display.end();
    stats.generate_s = seconds_since(t1);
    stats.end = turn.end();
    stats.generated = turn.n_tokens();
    conversation_.add_assistant(turn.history_text());
    return stats;
}

void ChatLoop::notice(std::FILE* out, std::FILE* err, std::string_view text) const {
    std::fflush(out);
    const bool dim = options_.display.color;
    std::fputs(fmt::format("{}{}{}\n", dim ? kSgrDim : "", text, dim ? kSgrReset : "").c_str(),
               err);
    std::fflush(err);
}

void ChatLoop::interact(LineReader& in, std::FILE* out, std::FILE* err, bool show_prompt) {
    bool interrupted_at_prompt = false;
    std::string line;
    for (;;) {
        if (show_prompt) {
            std::fputs("> ", out);
            std::fflush(out);
        }
        const LineReader::Status status = in.read(line);
        if (status == LineReader::Status::kInterrupted) {
            if (interrupted_at_prompt) {
                std::fputs("\n", out);
                break;
            }
            interrupted_at_prompt = true;
            std::fputs("\n", out);
            notice(out, err, "(Ctrl-C again, /exit or Ctrl-D to quit)");
            continue;
        }
        if (status == LineReader::Status::kEnd) {
            if (show_prompt) std::fputs("\n", out);
            break;
        }
        interrupted_at_prompt = false;
        const std::string_view command = trim_ascii(line);
        if (command.empty()) continue;
        if (command == "/exit" || command == "/quit") break;
        if (command == "/reset") {
            conversation_.clear();
            source_.reset();
            notice(out, err, "(new conversation)");
            continue;
        }
        if (command == "/help") {
            notice(out, err, banner());
            continue;
        }

        conversation_.add_user(line);
        const TurnStats stats = answer(out);
        if (stats.did_not_fit) {
            notice(out, err,
                   fmt::format("[the conversation is {} tokens and the context holds {}: /reset "
                               "to start over]",
                               stats.prompt_tokens, source_.n_ctx()));
            continue;
        }
        switch (stats.end) {
            case TurnEnd::kInterrupted:
                notice(out, err, "[stopped]");
                break;
            case TurnEnd::kLength:
                notice(out, err, fmt::format("[stopped after {} tokens (-n)]", stats.generated));
                break;
            case TurnEnd::kContextFull:
                notice(out, err,
                       fmt::format("[the context is full ({} tokens): /reset to start over]",
                                   source_.n_ctx()));
                break;
            default:
                break;
        }
    }
    std::fflush(out);
}

}  // namespace strata::chat
