// strata bench: prefill and decode speed of a model.
//   strata bench -m MODEL [-p 512] [-n 128] [--depth N] [--threads N] [--seed S] [--parallel K]
//                [--mla-legacy M] [--bandwidth GBPS] [--no-warmup] [--decode-after-prompt]
//                [--json]
//                [--ram-budget SIZE|PCT [--cache-policy P] [--hot-profile F] [--save-profile F]]
// After an untimed warm-up pass over the prompt (--no-warmup: none) and, with --depth, an untimed
// pass over N other random tokens that stay in the cache (as llama-bench's -d), prefills -p
// random token ids in one batch, then decodes -n tokens one at a time (each the argmax of the
// previous logits) after the same N cached positions, as llama-bench's tg test: the prompt's
// positions are dropped and the N refilled, untimed (--decode-after-prompt: decode right after
// the prompt instead, as llama-batched-bench), and reports tokens per second of both phases, the
// peak resident memory, the KV cache size and the weight bytes a decoded token reads. With the
// machine's read bandwidth (--bandwidth, or probed after the run as `strata info --probe` does),
// decode speed is also given as a fraction of the bandwidth bound, bandwidth / weight bytes per
// token.
// --json prints one object with at least prefill_tps, decode_tps, decode_depth, peak_rss_bytes,
// kv_cache_bytes, threads, depth, weight_bytes_per_token, read_bandwidth_gbps and
// bandwidth_fraction (these two when decoding); with --ram-budget also the decode phase's
// expert-cache figures: hit_rate, bytes_read_per_token, read_gbps (bytes read over the time reads
// were in flight), stall_ms_per_token (time the forward pass waited for reads) and
// prefetch_accuracy (share of routed experts the next-layer guess named), the prefill's
// prefill_bytes_read, and experts_regrouped (slots rewritten for the interleaved kernels because
// a batch multiplied them for several tokens, over the whole run).
// --parallel K then decodes -n tokens in each of K sequences at once (each after its own -p random
// prompt, untimed), one pass per step for all of them as `strata serve` batches its requests
// (Forward::run_batch), and reports the aggregate decode tokens/s and its ratio to one sequence's
// (parallel_decode_tps, parallel_ratio), as llama-batched-bench measures llama.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "runtime/cli/commands.h"
#include "runtime/cli/default_model.h"
#include "runtime/cli/infer_args.h"
#include "runtime/engine.h"
#include "runtime/error.h"
#include "runtime/progress.h"
#include "simd/probe.h"

namespace strata::cli {
namespace {

struct BenchOptions {
    std::string model;
    int64_t n_prompt = 512;
    int64_t n_gen = 128;
    int64_t depth = 0;       // cached positions before the timed prefill
    double bandwidth = 0.0;  // GB/s of memory reads; 0: unknown
    int threads = 0;
    int64_t parallel = 1;  // sequences decoded together after the single-sequence run
    uint64_t seed = 1;
    bool json = false;
    bool warmup = true;
    bool decode_after_prompt = false;  // decode after depth + prompt positions
    MlaLegacy mla_legacy = MlaLegacy::Compressed;
    SessionOptions budget;        // --ram-budget, the cache options, --no-repack
    std::string save_profile;     // expert usage written here after the run
    std::string routing_profile;  // --routing-profile: router choices per layer and expert
};

// Bytes of weights one decoded token reads: every tensor once, except the token embedding (one
// row) and the routed experts (n_used of n_expert per layer, on average over tokens).
double weight_bytes_per_token(const Model& model) {
    const HParams& hp = model.hparams();
    double bytes = 0;
    for (const gguf::Tensor& t : model.file().tensors()) {
        if (&t == model.token_embd && model.output != model.token_embd) {
            bytes += static_cast<double>(t.row_bytes());
        } else if (role_of(t.name) == Role::RoutedExperts && hp.n_expert > 0) {
            bytes += static_cast<double>(t.nbytes) * static_cast<double>(hp.n_expert_used) /
                     static_cast<double>(hp.n_expert);
        } else {
            bytes += static_cast<double>(t.nbytes);
        }
    }
    return bytes;
}

void run_bench(const BenchOptions& o) {
    if (o.n_prompt < 1) throw UsageError(fmt::format("-p is {}, expected at least 1", o.n_prompt));
    if (o.n_gen < 0) throw UsageError(fmt::format("-n is {}, expected 0 or more", o.n_gen));
    if (o.depth < 0) throw UsageError(fmt::format("--depth is {}, expected 0 or more", o.depth));
    if (o.parallel < 1 || o.parallel > 4096)
        throw UsageError(fmt::format("--parallel is {}, expected 1 to 4096", o.parallel));
    if (!(o.bandwidth >= 0.0))
        throw UsageError(fmt::format("--bandwidth is {}, expected GB/s above 0", o.bandwidth));
    const Model model = load_model(o.model);
    // The budget options as parsed (every one of them: a field copied by hand is a field
    // forgotten when one is added), then what bench decides itself.
    SessionOptions so = o.budget;
    so.n_ctx = o.depth + o.n_prompt + o.n_gen;
    so.n_batch = o.n_prompt;
    so.n_threads = o.threads;
    so.mla_legacy = o.mla_legacy;
    Session session(model, so);
    const offload::ExpertCache* cache = session.expert_cache();
    const int threads = session.n_threads();

    std::mt19937_64 rng(o.seed);
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(session.n_vocab() - 1));
    std::vector<int32_t> prompt(static_cast<size_t>(o.n_prompt));
    for (int32_t& id : prompt) id = pick(rng);

    // Warm-up: the prompt once, untimed, so that the timed passes find the weights they touch
    // (the shared ones and the experts this prompt routes to) resident rather than still mapped
    // from the file, as llama-bench does.
    if (o.warmup) {
        if (!o.json) std::fprintf(stderr, "warm-up ...\n");
        session.decode(prompt);
        session.clear();
    }

    std::vector<int32_t> fill(static_cast<size_t>(o.depth));
    for (int32_t& id : fill) id = pick(rng);
    const auto fill_depth = [&] {
        if (fill.empty()) return;
        if (!o.json)
            std::fprintf(stderr, "filling %lld positions ...\n", static_cast<long long>(o.depth));
        session.decode(fill);
    };
    fill_depth();

    using Clock = std::chrono::steady_clock;
    if (!o.json)
        std::fprintf(stderr, "prefill of %lld tokens ...\n", static_cast<long long>(o.n_prompt));
    const offload::CacheStats s0 = cache ? cache->stats() : offload::CacheStats{};
    const auto t0 = Clock::now();
    std::span<const float> logits = session.decode(prompt);
    const auto t1 = Clock::now();
    const offload::CacheStats s1 = cache ? cache->stats() : offload::CacheStats{};
    const auto argmax = [](std::span<const float> l) {
        return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    };
    int32_t token = argmax(logits);
    if (!o.decode_after_prompt) {
        session.clear();
        fill_depth();
    }
    const int64_t decode_depth = session.n_past();  // positions cached when decoding starts
    const offload::CacheStats s_dec = cache ? cache->stats() : offload::CacheStats{};
    Progress progress("decode", static_cast<uint64_t>(o.n_gen));
    const auto t_dec = Clock::now();
    for (int64_t i = 0; i < o.n_gen; ++i) {
        logits = session.decode({&token, 1});
        token = argmax(logits);
        progress.update(static_cast<uint64_t>(i + 1));
    }
    progress.finish();
    const auto t2 = Clock::now();

    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double decode_s = std::chrono::duration<double>(t2 - t_dec).count();
    const double prefill_tps = prefill_s > 0 ? static_cast<double>(o.n_prompt) / prefill_s : 0.0;
    const double decode_tps = decode_s > 0 ? static_cast<double>(o.n_gen) / decode_s : 0.0;
    // K sequences decoded together on one engine of their own.
    double parallel_tps = 0.0;
    if (o.parallel > 1) {
        SessionOptions po = so;
        po.n_ctx = o.n_prompt + o.n_gen;
        auto engine = std::make_shared<Engine>(model, po, o.parallel);
        std::vector<Session> seqs;
        std::vector<Session*> ptrs;
        std::vector<int32_t> next;
        if (!o.json)
            std::fprintf(stderr, "prefill of %lld sequences ...\n",
                         static_cast<long long>(o.parallel));
        for (int64_t k = 0; k < o.parallel; ++k) seqs.emplace_back(engine);
        for (Session& s : seqs) {
            for (int32_t& id : prompt) id = pick(rng);
            const std::span<const float> l = s.decode(prompt);
            next.push_back(static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin()));
            ptrs.push_back(&s);
        }
        std::vector<float> rows;
        const int64_t vocab = session.n_vocab();
        Progress bar("decode", static_cast<uint64_t>(o.n_gen));
        const auto p0 = Clock::now();
        for (int64_t i = 0; i < o.n_gen; ++i) {
            Session::decode_batch(ptrs, next, rows);
            for (size_t k = 0; k < next.size(); ++k) {
                const float* r = rows.data() + static_cast<int64_t>(k) * vocab;
                next[k] = static_cast<int32_t>(std::max_element(r, r + vocab) - r);
            }
            bar.update(static_cast<uint64_t>(i + 1));
        }
        bar.finish();
        const double s = std::chrono::duration<double>(Clock::now() - p0).count();
        parallel_tps = s > 0 ? static_cast<double>(o.n_gen * o.parallel) / s : 0.0;
    }
    const uint64_t rss = peak_rss_bytes();
    const double per_token = weight_bytes_per_token(model);
    // The machine's read bandwidth, given or probed now (after the peak RSS is taken: the probe's
    // buffer is not the model's), and decode speed over the bound it puts on reading the weights.
    double bandwidth = o.bandwidth;
    if (bandwidth == 0.0 && o.n_gen > 0) {
        if (!o.json) std::fprintf(stderr, "probing read bandwidth ...\n");
        bandwidth = simd::probe_read_bandwidth(threads, simd::default_probe_bytes()).gb_per_s;
    }
    const double fraction = bandwidth > 0 ? decode_tps * per_token / (bandwidth * 1e9) : 0.0;
    const offload::CacheStats dec = (cache ? cache->stats() : offload::CacheStats{}) - s_dec;
    const double per_gen_token = o.n_gen > 0 ? 1.0 / static_cast<double>(o.n_gen) : 0.0;
    if (cache && !o.save_profile.empty()) cache->write_profile(o.save_profile);
    write_routing_profile(session, o.routing_profile);
    const double top10 = routing_top_share(session.routing_counts(), 0.1);
    if (o.json) {
        nlohmann::json j;
        j["model"] = o.model;
        j["arch"] = arch_name(model.hparams().arch);
        j["file_bytes"] = model.file().file_bytes();
        j["n_prompt"] = o.n_prompt;
        j["n_gen"] = o.n_gen;
        j["prefill_s"] = prefill_s;
        j["decode_s"] = decode_s;
        j["prefill_tps"] = prefill_tps;
        j["decode_tps"] = decode_tps;
        j["peak_rss_bytes"] = rss;
        j["kv_cache_bytes"] = session.cache_bytes();
        j["threads"] = threads;
        j["depth"] = o.depth;
        j["decode_depth"] = decode_depth;
        if (!session.routing_counts().empty()) j["routing_top10_share"] = top10;
        j["weight_bytes_per_token"] = per_token;
        if (bandwidth > 0) {
            j["read_bandwidth_gbps"] = bandwidth;
            j["read_bandwidth_source"] = o.bandwidth > 0 ? "given" : "probe";
            j["bandwidth_fraction"] = fraction;
        }
        if (o.parallel > 1) {
            j["parallel"] = o.parallel;
            j["parallel_decode_tps"] = parallel_tps;
            j["parallel_ratio"] = decode_tps > 0 ? parallel_tps / decode_tps : 0.0;
        }
        if (const GpuTier* gpu = session.gpu_tier()) {
            j["gpu_budget_bytes"] = so.gpu.budget;
            j["gpu_device"] = gpu->device().name();
            j["gpu_bytes"] = gpu->weights().bytes;
            j["gpu_tensors"] = gpu->weights().tensors.size();
            j["gpu_expert_slabs"] = gpu->weights().slabs.size();
            j["gpu_predicted_decode_tps"] = gpu->placement().prediction.decode_tps;
        }
        if (cache) {
            j["ram_budget_bytes"] = so.ram_budget;
            j["cache_policy"] = offload::policy_name(cache->policy());
            j["cache_slots"] = cache->n_slots();
            j["slot_bytes"] = cache->slot_bytes();
            j["expert_bytes"] = cache->store().expert_bytes();
            j["resident_bytes"] = cache->store().resident_bytes();
            j["io"] = cache->reader().uses_io_uring() ? "io_uring" : "pread";
            j["o_direct"] = cache->reader().direct();
            j["huge_pages"] = cache->huge_pages();
            j["hit_rate"] = dec.hit_rate();
            j["hits"] = dec.hits;
            j["misses"] = dec.misses;
            j["bytes_read_per_token"] = static_cast<double>(dec.bytes_read) * per_gen_token;
            j["read_gbps"] = dec.read_gbps();
            j["stall_ms_per_token"] = static_cast<double>(dec.stall_ns) / 1e6 * per_gen_token;
            j["prefetch_accuracy"] = dec.prefetch_accuracy();
            j["prefetched"] = dec.prefetched;
            j["prefill_bytes_read"] = (s1 - s0).bytes_read;
            j["prefill_read_gbps"] = (s1 - s0).read_gbps();
            j["experts_regrouped"] = cache->stats().rewrites;
        }
        fmt::print("{}\n", j.dump());
        return;
    }
    fmt::print("model     {} ({}, {})\n", o.model, arch_name(model.hparams().arch),
               format_bytes(model.file().file_bytes()));
    fmt::print("threads   {}\n", threads);
    fmt::print("KV cache  {} for {} positions\n", format_bytes(session.cache_bytes()),
               session.n_ctx());
    fmt::print("prefill   {} tokens in {:.3f} s: {:.2f} tokens/s\n", o.n_prompt, prefill_s,
               prefill_tps);
    fmt::print("decode    {} tokens in {:.3f} s: {:.2f} tokens/s{}\n", o.n_gen, decode_s,
               decode_tps,
               decode_depth > 0 ? fmt::format(" after {} cached positions", decode_depth) : "");
    if (o.parallel > 1)
        fmt::print(
            "parallel  {} sequences decoding together: {:.2f} tokens/s in all, {:.2f}x one\n",
            o.parallel, parallel_tps, decode_tps > 0 ? parallel_tps / decode_tps : 0.0);
    fmt::print("weights   {} read per decoded token\n",
               format_bytes(static_cast<uint64_t>(per_token)));
    if (bandwidth > 0)
        fmt::print("bound     {:.2f} tokens/s at {:.1f} GB/s: decode reaches {:.0f}%\n",
                   bandwidth * 1e9 / per_token, bandwidth, 100 * fraction);
    fmt::print("peak RSS  {}\n", format_bytes(rss));
    if (!session.routing_counts().empty())
        fmt::print(
            "routing   the top 10% of experts took {:.1f}% of the routings (mean of the "
            "MoE layers, every pass of this run)\n",
            100 * top10);
    if (const GpuTier* gpu = session.gpu_tier())
        fmt::print("gpu       {}; the plan predicted {:.2f} tokens/s decoding\n", gpu->summary(),
                   gpu->placement().prediction.decode_tps);
    if (cache) {
        fmt::print(
            "experts   {} slots of {} ({}), decode: hit rate {:.3f}, {} read per token "
            "at {:.2f} GB/s, stall {:.2f} ms per token, prefetch accuracy {:.3f}\n",
            cache->n_slots(), format_bytes(cache->slot_bytes()),
            offload::policy_name(cache->policy()), dec.hit_rate(),
            format_bytes(
                static_cast<uint64_t>(static_cast<double>(dec.bytes_read) * per_gen_token)),
            dec.read_gbps(), static_cast<double>(dec.stall_ns) / 1e6 * per_gen_token,
            dec.prefetch_accuracy());
    }
}

}  // namespace

void add_bench(CLI::App& app) {
    auto* cmd = app.add_subcommand("bench", "Measure prefill and decode speed");
    static BenchOptions o;
    add_model_option(cmd, o.model);
    cmd->add_option("-p,--n-prompt", o.n_prompt, "Prompt tokens")->capture_default_str();
    cmd->add_option("-n,--n-gen", o.n_gen, "Generated tokens")->capture_default_str();
    cmd->add_option("--depth", o.depth, "Cached positions before the timed prefill and decode")
        ->capture_default_str();
    cmd->add_option(
        "--bandwidth", o.bandwidth,
        "Memory read bandwidth in GB/s, for decode as a fraction of its bound (default: "
        "probed after the run, as `strata info --probe`)");
    cmd->add_option("--threads", o.threads, "Threads (default: one per core)");
    cmd->add_option("--parallel", o.parallel,
                    "Then decode -n tokens in this many sequences at once, one pass per step")
        ->capture_default_str();
    cmd->add_option("--seed", o.seed, "Seed of the random prompt")->capture_default_str();
    add_mla_legacy_option(cmd, o.mla_legacy);
    add_budget_options(cmd, o.budget);
    cmd->add_option("--save-profile", o.save_profile,
                    "With --ram-budget: write expert usage (a --hot-profile) to this file");
    add_routing_profile_option(cmd, o.routing_profile);
    cmd->add_flag("--json", o.json, "Print one JSON object");
    cmd->add_flag("!--no-warmup", o.warmup, "Time the first pass too (cold weights)");
    cmd->add_flag("--decode-after-prompt", o.decode_after_prompt,
                  "Decode right after the prompt's positions (as llama-batched-bench), not after "
                  "--depth positions only (as llama-bench's tg test)");
    cmd->callback([] {
        use_default_model(o.model);
        run_bench(o);
    });
}

}  // namespace strata::cli
