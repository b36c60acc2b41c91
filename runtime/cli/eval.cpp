// strata eval: the logits of every position of a token sequence, computed in one batch.
//   strata eval -m MODEL (--tokens 1,2,3 | --text T) [--out FILE.f32] [--json] [--threads N]
// --text is tokenized with the model's tokenizer (BOS as the file asks, special tokens parsed).
// --out writes n_tokens × n_vocab little-endian float32 rows; --json prints one object with the
// argmax and top logit of each position and the timing; otherwise a table goes to stdout.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "runtime/cli/commands.h"
#include "runtime/cli/infer_args.h"
#include "runtime/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata::cli {
namespace {

struct EvalOptions {
    std::string model;
    std::string tokens;
    std::string text;
    std::string out;
    bool json = false;
    SessionOptions session{.n_ctx = 0, .n_batch = 0, .n_threads = 0};
};

void write_logits(const std::string& path, const std::vector<float>& logits) {
    static_assert(std::endian::native == std::endian::little, "logits files are little-endian");
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) fail("{}: cannot open for writing", path);
    const size_t n = std::fwrite(logits.data(), sizeof(float), logits.size(), f);
    const bool closed = std::fclose(f) == 0;
    if (n != logits.size() || !closed) fail("{}: write error", path);
}

void run_eval(const EvalOptions& o) {
    if (o.tokens.empty() == o.text.empty())
        throw UsageError("give the input exactly once: --tokens or --text");
    const Model model = load_model(o.model);
    const std::vector<int32_t> ids =
        o.text.empty() ? parse_token_list(o.tokens)
                       : tokenizer::Tokenizer::load(model.file()).encode(o.text, true);
    if (ids.empty()) throw UsageError("--text has no tokens");
    SessionOptions so = o.session;
    const auto n = static_cast<int64_t>(ids.size());
    // One batch for the whole sequence, in a context just large enough, unless told otherwise.
    if (so.n_ctx == 0) so.n_ctx = n;
    if (so.n_batch == 0) so.n_batch = n;
    Session session(model, so);

    std::vector<float> logits;
    const auto start = std::chrono::steady_clock::now();
    session.decode_all(ids, logits);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!o.out.empty()) write_logits(o.out, logits);

    const int64_t vocab = session.n_vocab();
    std::vector<int32_t> argmax(ids.size());
    std::vector<float> top(ids.size());
    for (size_t t = 0; t < ids.size(); ++t) {
        const float* row = logits.data() + static_cast<int64_t>(t) * vocab;
        const float* best = std::max_element(row, row + vocab);
        argmax[t] = static_cast<int32_t>(best - row);
        top[t] = *best;
    }
    if (o.json) {
        nlohmann::json j;
        j["model"] = o.model;
        j["arch"] = arch_name(model.hparams().arch);
        j["n_tokens"] = n;
        j["n_vocab"] = vocab;
        j["tokens"] = ids;
        j["argmax"] = argmax;
        j["max_logit"] = top;
        j["seconds"] = seconds;
        j["tokens_per_second"] = seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
        if (!o.out.empty()) j["out"] = o.out;
        fmt::print("{}\n", j.dump());
        return;
    }
    fmt::print("{:>6} {:>8} {:>8} {:>12}\n", "pos", "token", "argmax", "max logit");
    for (size_t t = 0; t < ids.size(); ++t)
        fmt::print("{:>6} {:>8} {:>8} {:>12.6f}\n", t, ids[t], argmax[t], top[t]);
    std::fprintf(stderr, "%lld tokens in %.3f s (%.1f tokens/s)\n", static_cast<long long>(n),
                 seconds, seconds > 0 ? static_cast<double>(n) / seconds : 0.0);
}

}  // namespace

void add_eval(CLI::App& app) {
    auto* cmd = app.add_subcommand("eval", "Logits at every position of a token sequence");
    static EvalOptions o;
    cmd->add_option("-m,--model", o.model, "GGUF model file")->required();
    cmd->add_option("--tokens", o.tokens, "Token ids, e.g. 1,2,3");
    cmd->add_option("--text", o.text, "Text, tokenized with the model's tokenizer");
    cmd->add_option("--out", o.out, "Write n_tokens × n_vocab float32 logits to this file");
    cmd->add_flag("--json", o.json, "Print one JSON object");
    cmd->add_option("--ctx", o.session.n_ctx, "Context size (default: the number of tokens)");
    cmd->add_option("--batch", o.session.n_batch, "Tokens per forward pass (default: all)");
    cmd->add_option("--threads", o.session.n_threads, "Threads (default: one per core)");
    cmd->callback([] { run_eval(o); });
}

}  // namespace strata::cli
