// strata run --chat: a conversation with the model in the terminal, or one answer with -p/-f.
//
//   strata run -m MODEL --chat [--system PROMPT] [--system-as-is] [--chat-template NAME]
//              [--hide-reasoning] [--stop TEXT]... [-n N] [sampling flags] [--ctx N]
//   strata run -m MODEL --chat -p PROMPT (or -f FILE) ...
//
// The session keeps its KV cache between turns: each turn renders the whole conversation and
// Session::prefill keeps the prefix the cache already holds. The reasoning is shown dimmed on a
// terminal and between <think> lines otherwise; notices go to stderr.
#include "runtime/cli/chat.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "runtime/chat/chat_loop.h"
#include "runtime/chat/detect.h"
#include "runtime/chat/stop_strings.h"
#include "runtime/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata::cli {
namespace {

// A Session and a Sampler as the chat loop's token source.
class SessionSource : public chat::TokenSource {
  public:
    SessionSource(Session& session, Sampler& sampler) : session_(session), sampler_(sampler) {}

    int64_t n_ctx() const override { return session_.n_ctx(); }
    int64_t n_past() const override { return session_.n_past(); }
    int64_t prefill(std::span<const int32_t> tokens) override {
        logits_ = session_.prefill(tokens);
        // The repetition penalty looks at the end of the context, which is now this prompt.
        sampler_.accept_context(tokens);
        return session_.reused();
    }
    int32_t sample() override {
        const int32_t id = sampler_.sample(logits_);
        sampler_.accept(id);
        return id;
    }
    void append(int32_t id) override { logits_ = session_.decode({&id, 1}); }
    void reset() override { session_.clear(); }

  private:
    Session& session_;
    Sampler& sampler_;
    std::span<const float> logits_;  // (n_vocab) after the last token of the context
};

std::string read_prompt_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open for reading", path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail("{}: read error", path);
    return text;
}

std::string describe(const Model& model, const chat::DetectedTemplate& t, int64_t n_ctx) {
    const std::string_view name = model.file().get_str_or("general.name", "");
    return fmt::format("chat: {}{}{} template ({}); context {} tokens", name,
                       name.empty() ? "" : ", ", chat::family_name(t.tmpl.family()), t.reason,
                       n_ctx);
}

}  // namespace

void ChatFlags::add(CLI::App* cmd) {
    cmd->add_flag("--chat", enabled,
                  "Chat: an interactive session that keeps its context between turns (Ctrl-C "
                  "stops an answer, Ctrl-C twice at the prompt quits; /reset, /exit, Ctrl-D), "
                  "or with -p/-f one answer on stdout");
    cmd->add_option("--chat-template", template_name,
                    "Chat template instead of the file's: " + chat::family_names());
    cmd->add_option("--system", system, "System prompt for --chat");
    cmd->add_flag("--system-as-is", system_as_is,
                  "Keep the system prompt as a system prompt (R1 models get it folded into the "
                  "first user turn, as their model card advises)");
    cmd->add_flag("--hide-reasoning", hide_reasoning,
                  "Show only the answer, not the <think> reasoning");
    cmd->add_option("--stop", stops, "Stop the answer at this text (may be given several times)")
        ->allow_extra_args(false);
}

void run_chat(const ChatFlags& flags, const ChatRequest& r) {
    if (r.model.empty()) throw UsageError("no model given: pass -m MODEL");
    if (r.tokens_given) throw UsageError("--chat takes a text prompt (-p or -f), not --tokens");
    if (!r.prompt.empty() && !r.prompt_file.empty())
        throw UsageError("give the prompt once: -p TEXT or -f FILE");
    if (r.n_predict && *r.n_predict < 0)
        throw UsageError(fmt::format("-n is {}, expected 0 or more", *r.n_predict));
    std::optional<chat::Family> forced;
    if (!flags.template_name.empty()) forced = chat::parse_family(flags.template_name);
    // StopStrings refuses empty strings with a usage error; check before loading anything.
    const chat::StopStrings check_stops(flags.stops);
    const bool one_turn = !r.prompt.empty() || !r.prompt_file.empty();
    const std::string prompt = r.prompt_file.empty() ? r.prompt : read_prompt_file(r.prompt_file);
    if (one_turn && prompt.empty()) throw UsageError("the prompt is empty");

    const Model model = load_model(r.model);
    const auto tok = tokenizer::Tokenizer::load(model.file());
    const chat::DetectedTemplate detected = chat::detect_template(model.file(), tok, forced);
    Session session(model, r.session);
    Sampler sampler(r.sampling->resolve(model));
    SessionSource source(session, sampler);
    chat::Conversation conversation(detected.tmpl, flags.system, flags.system_as_is);

    const bool color = chat::use_color(STDOUT_FILENO);
    const chat::ChatOptions options{
        .stops = flags.stops,
        .max_tokens = r.n_predict.value_or(-1),
        .display = {.color = color, .hide_reasoning = flags.hide_reasoning},
    };
    chat::InterruptHandler interrupts(color);
    chat::ChatLoop loop(source, tok, conversation, options, &interrupts);
    std::fprintf(stderr, "%s\n", describe(model, detected, session.n_ctx()).c_str());

    if (one_turn) {
        conversation.add_user(prompt);
        const chat::TurnStats s = loop.answer(stdout);
        if (s.did_not_fit) {
            fail("the prompt is {} tokens and the context holds {} (--ctx)", s.prompt_tokens,
                 session.n_ctx());
        }
        std::fprintf(stderr,
                     "prompt: %lld tokens in %.3f s; generated %lld tokens in %.3f s (%.2f t/s); "
                     "seed %llu\n",
                     static_cast<long long>(s.prompt_tokens), s.prefill_s,
                     static_cast<long long>(s.generated), s.generate_s,
                     s.generate_s > 0 ? static_cast<double>(s.generated) / s.generate_s : 0.0,
                     static_cast<unsigned long long>(sampler.params().seed));
        write_routing_profile(session, r.routing_profile);
        if (s.end == chat::TurnEnd::kInterrupted) fail("interrupted (Ctrl-C)");
        if (s.end == chat::TurnEnd::kContextFull)
            fail("context full after {} tokens (--ctx {})", session.n_past(), session.n_ctx());
        return;
    }

    std::fprintf(stderr, "%s\n", chat::ChatLoop::banner().c_str());
    chat::LineReader reader(STDIN_FILENO, &interrupts);
    loop.interact(reader, stdout, stderr, chat::is_terminal(STDIN_FILENO));
    write_routing_profile(session, r.routing_profile);
}

}  // namespace strata::cli
