// strata run: generate from a prompt, streaming each token as it is chosen (--chat: the chat
// loop of runtime/cli/chat.cpp).
//   strata run -m MODEL (-p PROMPT | -f FILE | --tokens 1,2,3) [-n N] [--temp T] [--top-k K]
//              [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--greedy] [--ctx N]
//              [--threads N] [--mla-legacy compressed|per-head] [--ignore-eos]
//              [--ram-budget SIZE|PCT [--cache-policy P] [--hot-profile F] [--verbose]]
// A text prompt is tokenized with the model's tokenizer (BOS as the file asks, special tokens
// parsed) and the generated text is streamed to stdout; a --tokens prompt streams the generated
// ids, space-separated. Statistics go to stderr. Generation stops after N tokens, at an
// end-of-generation token (unless --ignore-eos), or when the context is full.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>

#include "runtime/cli/chat.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/default_model.h"
#include "runtime/cli/infer_args.h"
#include "runtime/error.h"
#include "runtime/tokenizer/stream_decoder.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata::cli {
namespace {

struct RunOptions {
    std::string model;
    std::string tokens;
    std::string prompt;
    std::string prompt_file;
    int64_t n_predict = 128;
    bool n_given = false;  // -n on the command line (a chat has no limit by default)
    bool ignore_eos = false;
    bool verbose = false;         // expert-cache statistics per layer
    std::string routing_profile;  // --routing-profile: router choices per layer and expert
    SessionOptions session;
    SamplingFlags sampling;
    ChatFlags chat;
};

// The ids that end generation without a tokenizer: tokenizer.ggml.eos_token_id and
// eot_token_id when present.
std::vector<int32_t> end_tokens(const Model& model) {
    std::vector<int32_t> ids;
    for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
        const gguf::Value* v = model.file().find(key);
        if (!v || !v->is_integer()) continue;
        const int64_t id = model.file().get_i64(key);
        if (id >= 0 && id < model.hparams().n_vocab) ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open for reading", path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail("{}: read error", path);
    return text;
}

void write_out(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
}

void run_generate(const RunOptions& o) {
    const int given = !o.tokens.empty() + !o.prompt.empty() + !o.prompt_file.empty();
    if (given != 1) throw UsageError("give the prompt exactly once: -p TEXT, -f FILE or --tokens");
    if (o.n_predict < 0) throw UsageError(fmt::format("-n is {}, expected 0 or more", o.n_predict));
    const Model model = load_model(o.model);

    // Text prompts need the tokenizer; an ids prompt uses it only to recognise end tokens.
    std::optional<tokenizer::Tokenizer> tok;
    const bool text_mode = o.tokens.empty();
    if (text_mode) {
        tok = tokenizer::Tokenizer::load(model.file());
    } else {
        try {
            tok = tokenizer::Tokenizer::load(model.file());
        } catch (const Error&) {
            tok.reset();  // a file without a usable vocabulary still runs on ids
        }
    }
    std::vector<int32_t> prompt;
    if (text_mode) {
        const std::string text = o.prompt_file.empty() ? o.prompt : read_text(o.prompt_file);
        prompt = tok->encode(text, /*add_special=*/true);
        if (prompt.empty()) throw UsageError("the prompt has no tokens");
    } else {
        prompt = parse_token_list(o.tokens);
    }
    const std::vector<int32_t> stop = end_tokens(model);
    const auto is_end = [&](int32_t id) {
        if (o.ignore_eos) return false;
        if (tok) return tok->is_eog(id);
        return std::find(stop.begin(), stop.end(), id) != stop.end();
    };

    Session session(model, o.session);
    Sampler sampler(o.sampling.resolve(model));
    for (int32_t id : prompt) sampler.accept(id);
    std::optional<tokenizer::StreamDecoder> text_out;
    if (text_mode) text_out.emplace(*tok, tokenizer::Control::kSkip);

    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    std::span<const float> logits = session.prefill(prompt);
    const auto t1 = Clock::now();
    int64_t generated = 0;
    bool context_full = false;
    while (generated < o.n_predict) {
        const int32_t id = sampler.sample(logits);
        sampler.accept(id);
        ++generated;
        if (text_out) {
            write_out(text_out->push(id));
        } else {
            write_out(fmt::format("{}{}", generated > 1 ? " " : "", id));
        }
        if (is_end(id) || generated == o.n_predict) break;
        if (session.n_past() >= session.n_ctx()) {
            context_full = true;
            break;
        }
        logits = session.decode({&id, 1});
    }
    if (text_out) write_out(text_out->flush());
    write_out("\n");
    const auto t2 = Clock::now();
    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double gen_s = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr,
                 "prompt: %zu tokens in %.3f s; generated %lld tokens in %.3f s (%.2f t/s); "
                 "seed %llu\n",
                 prompt.size(), prefill_s, static_cast<long long>(generated), gen_s,
                 gen_s > 0 ? static_cast<double>(generated) / gen_s : 0.0,
                 static_cast<unsigned long long>(sampler.params().seed));
    print_cache_stats(session, o.verbose);
    write_routing_profile(session, o.routing_profile);
    if (context_full) {
        fail("context full after {} tokens (--ctx {})", session.n_past(), session.n_ctx());
    }
}

}  // namespace

void add_run(CLI::App& app) {
    auto* cmd = app.add_subcommand("run", "Generate text (or token ids) from a prompt");
    static RunOptions o;
    add_model_option(cmd, o.model);
    cmd->add_option("-p,--prompt", o.prompt, "Prompt text");
    cmd->add_option("-f,--file", o.prompt_file, "Read the prompt text from this file");
    cmd->add_option("--tokens", o.tokens, "Prompt as token ids, e.g. 1,2,3 (ids are printed)");
    cmd->add_option("-n,--n-predict", o.n_predict, "Tokens to generate")->capture_default_str();
    cmd->add_flag("--ignore-eos", o.ignore_eos, "Keep generating past end-of-generation tokens");
    cmd->add_flag("-v,--verbose", o.verbose,
                  "With --ram-budget: expert-cache statistics per layer");
    add_session_options(cmd, o.session);
    add_routing_profile_option(cmd, o.routing_profile);
    o.sampling.add(cmd);
    o.chat.add(cmd);
    cmd->callback([cmd] {
        o.n_given = cmd->count("-n") > 0;
        use_default_model(o.model);
        if (!o.chat.enabled) return run_generate(o);
        ChatRequest r;
        r.model = o.model;
        r.prompt = o.prompt;
        r.prompt_file = o.prompt_file;
        r.tokens_given = !o.tokens.empty();
        if (o.n_given) r.n_predict = o.n_predict;
        r.session = o.session;
        r.routing_profile = o.routing_profile;
        r.sampling = &o.sampling;
        run_chat(o.chat, r);
    });
}

}  // namespace strata::cli
