// Shared option handling of eval, run and bench.
#include "runtime/cli/infer_args.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <random>

#include <unistd.h>

#include "runtime/error.h"
#include "scheduler/routing_profile.h"

namespace strata::cli {

std::vector<int32_t> parse_token_list(const std::string& text) {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == ',' || c == ' ' || c == '\t' || c == '\n') {
            ++i;
            continue;
        }
        int32_t v = 0;
        const auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
        if (ec != std::errc() || end == text.data() + i) {
            throw UsageError(fmt::format("--tokens: '{}' at offset {} is not a token id",
                                         text.substr(i, 12), i));
        }
        ids.push_back(v);
        i = static_cast<size_t>(end - text.data());
    }
    if (ids.empty()) throw UsageError("--tokens: no token ids given");
    return ids;
}

Model load_model(const std::string& path) {
    return Model::load(gguf::File::open(path));
}

void add_session_options(CLI::App* cmd, SessionOptions& options) {
    cmd->add_option("--ctx", options.n_ctx,
                    "Context size in tokens (default: the training context, at most 4096)");
    cmd->add_option("--batch", options.n_batch, "Tokens per forward pass when prefilling")
        ->capture_default_str();
    cmd->add_option("--threads", options.n_threads, "Threads (default: one per core)");
    add_mla_legacy_option(cmd, options.mla_legacy);
    add_budget_options(cmd, options);
}

// A size flag: as --ram-budget reads them (binary units), errors naming this flag.
uint64_t parse_size(const std::string& flag, const std::string& text, uint64_t physical) {
    if (text == "0") return 0;
    try {
        return offload::parse_budget(text, physical);
    } catch (const UsageError& e) {
        std::string m = e.what();
        const std::string from = "--ram-budget";
        if (const size_t at = m.find(from); at != std::string::npos)
            m.replace(at, from.size(), flag);
        throw UsageError(m);
    }
}

void add_budget_options(CLI::App* cmd, SessionOptions& options) {
    cmd->add_flag_callback(
        "--no-repack", [&options] { options.repack = false; },
        "Keep the weights in the file's layout (by default Q4_K and Q6_K matrices are "
        "regrouped sixteen rows at a time in memory at load, for faster products with the "
        "same logits; skipped when the model does not fit in the memory available)");
    cmd->add_option_function<std::string>(
           "--ram-budget",
           [&options](const std::string& text) {
               const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
               const uint64_t physical = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) *
                                                                     static_cast<uint64_t>(page)
                                                               : 0;
               options.ram_budget = offload::parse_budget(text, physical);
           },
           "Memory for weights, KV cache and expert cache together (24G, 512M, 25% of RAM); "
           "routed experts beyond it are read from the file as needed")
        ->type_name("SIZE|PCT");
    cmd->add_option_function<std::string>(
           "--cache-policy",
           [&options](const std::string& text) {
               options.cache_policy = offload::parse_policy(text);
           },
           "Expert cache eviction: lru, lfu, or pinned (lru plus the --hot-profile set)")
        ->type_name("lru|lfu|pinned")
        ->default_str("lru");
    cmd->add_option("--hot-profile", options.hot_profile,
                    "Experts to keep resident under --cache-policy pinned: lines 'layer expert'");
    cmd->add_option("--io-queue-depth", options.reader.queue_depth,
                    "Expert reads (of 1 MiB) in flight at most")
        ->check(CLI::Range(1u, 4096u))
        ->capture_default_str();
    cmd->add_option("--prefetch", options.prefetch_reads,
                    "With --ram-budget: experts of the next layer read ahead while decoding, the "
                    "most likely first by its router on the current token (0: none)")
        ->check(CLI::Range(0u, 4096u))
        ->capture_default_str();
    cmd->add_flag("--force-pread", options.reader.force_pread,
                  "Read experts with pread instead of io_uring");
    cmd->add_option("--trace-out", options.trace_path,
                    "With --ram-budget: write every layer's routed experts here (strata tune)");
    cmd->add_option_function<std::string>(
           "--gpu-budget",
           [&options](const std::string& text) {
               options.gpu.budget = parse_size("--gpu-budget", text, 0);
           },
           "GPU memory to fill as strata plan places it (attention, norms, router, shared "
           "experts, then the hottest routed experts); their products run there")
        ->type_name("SIZE");
    cmd->add_option("--gpu-device", options.gpu.device,
                    "Device of --gpu-budget: cuda, or host (host memory running the CPU's "
                    "kernels, bit for bit the CPU's logits: for testing placements)")
        ->type_name("cuda|host")
        ->default_str("cuda");
    cmd->add_option("--usage", options.gpu.usage_path,
                    "With --gpu-budget: a routing profile (--routing-profile) ranking the routed "
                    "experts for the GPU (default: uniform)");
}

void add_routing_profile_option(CLI::App* cmd, std::string& path) {
    cmd->add_option("--routing-profile", path,
                    "Write how often each routed expert was chosen, per layer (JSON; the input "
                    "of strata plan --usage)");
}

void write_routing_profile(const Session& session, const std::string& path) {
    if (path.empty()) return;
    scheduler::write_routing_profile(
        path, scheduler::routing_profile_from_counts(session.routing_counts()));
}

double routing_top_share(const std::vector<std::vector<uint64_t>>& counts, double fraction) {
    double sum = 0.0;
    int64_t layers = 0;
    for (std::vector<uint64_t> c : counts) {
        const uint64_t total = std::accumulate(c.begin(), c.end(), uint64_t{0});
        if (total == 0) continue;
        const auto top = std::max<size_t>(
            1, static_cast<size_t>(std::ceil(fraction * static_cast<double>(c.size()))));
        std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(top), c.end(),
                          std::greater<>());
        const uint64_t taken =
            std::accumulate(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(top), uint64_t{0});
        sum += static_cast<double>(taken) / static_cast<double>(total);
        ++layers;
    }
    return layers ? sum / static_cast<double>(layers) : 0.0;
}

void print_cache_stats(const Session& session, bool per_layer) {
    if (const GpuTier* gpu = session.gpu_tier())
        std::fprintf(stderr, "%s, %llu products run there\n", gpu->summary().c_str(),
                     static_cast<unsigned long long>(gpu->device().products()));
    const offload::ExpertCache* cache = session.expert_cache();
    if (!cache) return;
    const offload::CacheStats st = cache->stats();
    std::fprintf(stderr,
                 "expert cache: %lld slots of %.2f MiB (%s, %s pages, %s); hit rate %.3f "
                 "(%llu hits, %llu misses); read %.1f MiB at %.2f GB/s; stall %.1f ms; "
                 "prefetched %llu, prediction accuracy %.3f; %llu regrouped for batches\n",
                 static_cast<long long>(cache->n_slots()),
                 static_cast<double>(cache->slot_bytes()) / (1 << 20),
                 std::string(offload::policy_name(cache->policy())).c_str(),
                 cache->huge_pages() ? "huge" : "normal",
                 cache->reader().uses_io_uring()
                     ? (cache->reader().direct() ? "io_uring O_DIRECT" : "io_uring")
                     : "pread",
                 st.hit_rate(), static_cast<unsigned long long>(st.hits),
                 static_cast<unsigned long long>(st.misses),
                 static_cast<double>(st.bytes_read) / (1 << 20), st.read_gbps(),
                 static_cast<double>(st.stall_ns) / 1e6,
                 static_cast<unsigned long long>(st.prefetched), st.prefetch_accuracy(),
                 static_cast<unsigned long long>(st.rewrites));
    if (!per_layer) return;
    for (int64_t il = 0; il < cache->store().n_layer(); ++il) {
        if (!cache->store().has_experts(il)) continue;
        const offload::LayerStats& l = cache->layer_stats(il);
        std::fprintf(stderr,
                     "  layer %3lld: %llu hits, %llu misses, %.1f MiB read, %.1f ms stalled, "
                     "%llu prefetched\n",
                     static_cast<long long>(il), static_cast<unsigned long long>(l.hits),
                     static_cast<unsigned long long>(l.misses),
                     static_cast<double>(l.bytes_read) / (1 << 20),
                     static_cast<double>(l.stall_ns) / 1e6,
                     static_cast<unsigned long long>(l.prefetched));
    }
}

void add_mla_legacy_option(CLI::App* cmd, MlaLegacy& mla_legacy) {
    const std::map<std::string, MlaLegacy> names{{"compressed", MlaLegacy::Compressed},
                                                 {"per-head", MlaLegacy::PerHead}};
    cmd->add_option("--mla-legacy", mla_legacy,
                    "deepseek2 files with the legacy attn_kv_b (older published R1 GGUFs): "
                    "'compressed' caches about kv_lora + qk_rope floats per token and layer "
                    "(R1: 2.26 KiB); prompts are bit for bit llama.cpp's, decoding runs "
                    "absorbed; 'per-head' caches n_head * (qk_nope + qk_rope + v_head) "
                    "floats (R1: 160 KiB, ~10 MB per token) as llama.cpp does, bit for bit")
        ->transform(CLI::Validator(
            [names](std::string& value) -> std::string {
                const auto it = names.find(CLI::detail::to_lower(value));
                if (it == names.end()) return "'" + value + "' is not compressed or per-head";
                value = std::to_string(static_cast<int>(it->second));
                return {};
            },
            "", ""))
        ->type_name("compressed|per-head")
        ->default_str("compressed");
}

void SamplingFlags::add(CLI::App* cmd) {
    cmd->add_option("--temp", temperature, "Temperature; 0 is greedy");
    cmd->add_option("--top-k", top_k, "Keep the k most likely tokens (0: off)");
    cmd->add_option("--top-p", top_p, "Keep the most likely tokens up to this probability mass");
    cmd->add_option("--min-p", min_p, "Drop tokens less likely than this times the best");
    cmd->add_option("--repeat-penalty", repeat_penalty, "Penalty for recent tokens (1: off)");
    cmd->add_option("--repeat-last-n", repeat_last_n, "How many recent tokens are penalised");
    cmd->add_option("--seed", seed, "Random seed (default: random)");
    cmd->add_flag("--greedy", greedy, "Always take the most likely token");
}

SamplerParams SamplingFlags::resolve(const Model& model) const {
    SamplerParams p = default_sampling(model);
    if (temperature) p.temperature = *temperature;
    if (top_k) p.top_k = *top_k;
    if (top_p) p.top_p = *top_p;
    if (min_p) p.min_p = *min_p;
    if (repeat_penalty) p.repeat_penalty = *repeat_penalty;
    if (repeat_last_n) p.repeat_last_n = *repeat_last_n;
    if (greedy) p.temperature = 0.0f;
    p.seed = seed ? *seed : std::random_device{}();
    return p;
}

uint64_t peak_rss_bytes() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) != 0) continue;
        uint64_t kb = 0;
        const char* p = line.c_str() + 6;
        while (*p == ' ' || *p == '\t') ++p;
        std::from_chars(p, line.c_str() + line.size(), kb);
        return kb * 1024;
    }
    return 0;
}

}  // namespace strata::cli
