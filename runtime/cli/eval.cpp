// strata eval: the logits of every position of a token sequence, computed in one batch.
//   strata eval -m MODEL (--tokens 1,2,3 | --text T) [--out FILE.f32] [--ref FILE.f32]
//               [--greedy N] [--json] [--threads N] [--mla-legacy compressed|per-head]
// --text is tokenized with the model's tokenizer (BOS as the file asks, special tokens parsed).
// --out writes n_tokens × n_vocab little-endian float32 rows; --ref reads such a file (another
// runtime's logits for the same tokens) and reports how closely they agree, by the golden set's
// metrics (runtime/logit_metrics.h); --greedy continues the sequence N tokens by argmax, one
// decode call each, as the golden set's greedy ids were made. --json prints one object with the
// argmax and top logit of each position, the timing and those results; otherwise a table goes to
// stdout.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "runtime/cli/commands.h"
#include "runtime/cli/default_model.h"
#include "runtime/cli/infer_args.h"
#include "runtime/error.h"
#include "runtime/logit_metrics.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata::cli {
namespace {

struct EvalOptions {
    std::string model;
    std::string tokens;
    std::string text;
    std::string out;
    std::string ref;
    int64_t greedy = 0;
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

// A float32 logits file of exactly `rows` × `vocab` values.
std::vector<float> read_logits(const std::string& path, int64_t rows, int64_t vocab) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail("{}: cannot open for reading", path);
    const size_t want = static_cast<size_t>(rows) * static_cast<size_t>(vocab);
    std::vector<float> v(want);
    const size_t got = std::fread(v.data(), sizeof(float), want, f);
    const bool longer = got == want && std::fgetc(f) != EOF;
    std::fclose(f);
    if (got != want || longer) {
        fail("{}: expected {} × {} float32 logits ({} bytes), found {}", path, rows, vocab,
             want * sizeof(float), longer ? "more" : fmt::format("{} bytes", got * sizeof(float)));
    }
    return v;
}

void run_eval(const EvalOptions& o) {
    if (o.tokens.empty() == o.text.empty())
        throw UsageError("give the input exactly once: --tokens or --text");
    const Model model = load_model(o.model);
    const std::vector<int32_t> ids =
        o.text.empty() ? parse_token_list(o.tokens)
                       : tokenizer::Tokenizer::load(model.file()).encode(o.text, true);
    if (ids.empty()) throw UsageError("--text has no tokens");
    if (o.greedy < 0) throw UsageError(fmt::format("--greedy is {}, expected ≥ 0", o.greedy));
    SessionOptions so = o.session;
    const auto n = static_cast<int64_t>(ids.size());
    // One batch for the whole sequence, in a context just large enough, unless told otherwise.
    if (so.n_ctx == 0) so.n_ctx = n + o.greedy;
    if (so.n_batch == 0) so.n_batch = n;
    Session session(model, so);

    std::vector<float> logits;
    const auto start = std::chrono::steady_clock::now();
    session.decode_all(ids, logits);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!o.out.empty()) write_logits(o.out, logits);

    const int64_t vocab = session.n_vocab();
    std::optional<metrics::LogitAgreement> agreement;
    if (!o.ref.empty())
        agreement = metrics::compare_logits(logits, read_logits(o.ref, n, vocab), vocab);
    // Greedy continuation after the prompt, one token per decode call.
    std::vector<int32_t> greedy;
    if (o.greedy > 0) {
        std::span<const float> last(logits.data() + (n - 1) * vocab, static_cast<size_t>(vocab));
        for (int64_t i = 0; i < o.greedy; ++i) {
            greedy.push_back(static_cast<int32_t>(metrics::row_argmax(last.data(), vocab)));
            if (i + 1 < o.greedy) last = session.decode({&greedy.back(), 1});
        }
    }
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
        if (o.greedy > 0) j["greedy"] = greedy;
        if (agreement) {
            j["ref"] = o.ref;
            j["max_rel"] = agreement->max_rel;
            j["worst_position"] = agreement->worst_row;
            j["mean_kl"] = agreement->mean_kl;
            j["top1"] = agreement->top1;
            j["exact_positions"] = agreement->exact_rows;
        }
        fmt::print("{}\n", j.dump());
        return;
    }
    fmt::print("{:>6} {:>8} {:>8} {:>12}\n", "pos", "token", "argmax", "max logit");
    for (size_t t = 0; t < ids.size(); ++t)
        fmt::print("{:>6} {:>8} {:>8} {:>12.6f}\n", t, ids[t], argmax[t], top[t]);
    if (o.greedy > 0) fmt::print("greedy: {}\n", fmt::join(greedy, ","));
    if (agreement) {
        fmt::print(
            "vs {}: max_rel {:.3g} (position {}), mean_kl {:.3g}, top1 {:.4f}, {} of {} "
            "positions identical\n",
            o.ref, agreement->max_rel, agreement->worst_row, agreement->mean_kl, agreement->top1,
            agreement->exact_rows, n);
    }
    std::fprintf(stderr, "%lld tokens in %.3f s (%.1f tokens/s)\n", static_cast<long long>(n),
                 seconds, seconds > 0 ? static_cast<double>(n) / seconds : 0.0);
}

}  // namespace

void add_eval(CLI::App& app) {
    auto* cmd = app.add_subcommand("eval", "Logits at every position of a token sequence");
    static EvalOptions o;
    add_model_option(cmd, o.model);
    cmd->add_option("--tokens", o.tokens, "Token ids, e.g. 1,2,3");
    cmd->add_option("--text", o.text, "Text, tokenized with the model's tokenizer");
    cmd->add_option("--out", o.out, "Write n_tokens × n_vocab float32 logits to this file");
    cmd->add_option(
        "--ref", o.ref,
        "Compare with these n_tokens × n_vocab float32 logits (max_rel, mean_kl, top1)");
    cmd->add_option("--greedy", o.greedy, "Then continue N tokens by argmax, one decode each");
    cmd->add_flag("--json", o.json, "Print one JSON object");
    cmd->add_option("--ctx", o.session.n_ctx, "Context size (default: the number of tokens)");
    cmd->add_option("--batch", o.session.n_batch, "Tokens per forward pass (default: all)");
    cmd->add_option("--threads", o.session.n_threads, "Threads (default: one per core)");
    add_mla_legacy_option(cmd, o.session.mla_legacy);
    add_budget_options(cmd, o.session);
    cmd->callback([] {
        use_default_model(o.model);
        run_eval(o);
    });
}

}  // namespace strata::cli
