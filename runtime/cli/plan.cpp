// strata plan: where each tensor of a model would live under a GPU and a RAM budget, how fast
// that is predicted to run and why, and the flags that reproduce the plan. Works on a GGUF file
// (header only) or on a synth preset's shapes (no file at all).
#include <filesystem>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "offload/expert_cache.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/infer_args.h"
#include "runtime/error.h"
#include "runtime/plan_model.h"
#include "scheduler/hardware.h"
#include "scheduler/plan.h"
#include "synth/layout.h"
#include "synth/spec.h"

namespace strata::cli {
namespace {

using scheduler::Part;
using scheduler::Tier;

struct PlanArgs {
    std::string model, preset, arch, type, usage, figures_path;
    std::string gpu = "0", ram, reserve;
    int64_t ctx = 4096;
    bool json = false, probe = false, paper = false;
    // Figure overrides; negative: not given.
    double ram_gbs = -1, cpu_int8_gops = -1, gpu_gbs = -1, gpu_tflops = -1, pcie_gbs = -1,
           pcie_latency_us = -1, nvme_gbs = -1, cpu_eff = -1, gpu_eff = -1, cpu_prefill_eff = -1,
           gpu_prefill_eff = -1;
};

// Sizes in binary units, the unit chosen so that golden-sized models do not print as zeros.
std::string gib(uint64_t b) {
    const double v = static_cast<double>(b);
    if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", v / (1ull << 30));
    if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", v / (1ull << 20));
    return fmt::format("{:.1f} KiB", v / 1024);
}

// The model's shapes: a preset's tensor table, or a file's header.
scheduler::ModelInfo load_info(const PlanArgs& a, std::string* source) {
    if (a.model.empty() == a.preset.empty())
        throw UsageError("give one of -m MODEL and --preset NAME");
    if (!a.preset.empty()) {
        std::optional<Arch> arch;
        if (!a.arch.empty()) {
            arch = synth::parse_arch(a.arch);
            if (!arch)
                throw UsageError(
                    fmt::format("unknown --arch '{}' (deepseek2, llama, qwen2)", a.arch));
        }
        synth::Spec spec = synth::make_spec(a.preset, arch);
        if (!a.type.empty()) {
            const auto target = recipe::parse_target(a.type);
            if (!target)
                throw UsageError(
                    fmt::format("unknown --type '{}' (types: {})", a.type, recipe::target_names()));
            spec.target = *target;
        }
        std::vector<TensorShape> shapes;
        for (const synth::TensorPlan& t : synth::plan_tensors(spec)) {
            TensorShape s{t.name, t.type, {1, 1, 1, 1}, t.bytes};
            for (size_t d = 0; d < t.ne.size() && d < 4; ++d) s.ne[d] = t.ne[d];
            shapes.push_back(std::move(s));
        }
        *source = fmt::format("preset {} {}", a.preset, recipe::target_name(spec.target));
        return model_info(fmt::format("{} {}", a.preset, recipe::target_name(spec.target)), spec.hp,
                          shapes);
    }
    if (!a.type.empty()) throw UsageError("--type applies to --preset only");
    const Model model = Model::load(gguf::File::open(a.model));
    *source = a.model;
    return model_info(model);
}

// Figures: the cache file (probing the CPU once when there is none), or the published ones
// with --paper; then each flag given.
scheduler::Figures load_figures(const PlanArgs& a, const scheduler::Hardware& hw) {
    scheduler::Figures f = scheduler::published_figures();
    const std::string path =
        a.figures_path.empty() ? scheduler::default_figures_path() : a.figures_path;
    if (!a.paper) {
        if (!a.probe && !path.empty() && std::filesystem::exists(path)) {
            f = scheduler::read_figures(path, f);
        } else {
            // The GPU, PCIe and NVMe figures stay the published ones until given: nothing here
            // measures them yet.
            f = scheduler::probe_cpu_figures(std::max(1, hw.physical_cores), f);
            if (!path.empty()) {
                scheduler::write_figures(path, f);
                f.source += ", cached in " + path;
            }
            f.source += "; GPU, PCIe and NVMe figures published, not measured";
        }
    }
    bool given = false;
    const auto set = [&](double v, double& field, const char* flag) {
        if (v < 0) return;
        if (!std::isfinite(v)) throw UsageError(fmt::format("{} is not a number", flag));
        field = v;
        given = true;
    };
    set(a.ram_gbs, f.ram_gbs, "--ram-bw");
    set(a.cpu_int8_gops, f.cpu_int8_gops, "--cpu-int8");
    set(a.gpu_gbs, f.gpu_gbs, "--gpu-bw");
    set(a.gpu_tflops, f.gpu_tflops, "--gpu-tflops");
    set(a.pcie_gbs, f.pcie_gbs, "--pcie-bw");
    set(a.pcie_latency_us, f.pcie_latency_us, "--pcie-latency-us");
    set(a.nvme_gbs, f.nvme_gbs, "--nvme-bw");
    set(a.cpu_eff, f.cpu_efficiency, "--cpu-eff");
    set(a.gpu_eff, f.gpu_efficiency, "--gpu-eff");
    set(a.cpu_prefill_eff, f.cpu_prefill_efficiency, "--cpu-prefill-eff");
    set(a.gpu_prefill_eff, f.gpu_prefill_efficiency, "--gpu-prefill-eff");
    for (const auto& [v, flag] : {std::pair{f.ram_gbs, "--ram-bw"},
                                  {f.gpu_gbs, "--gpu-bw"},
                                  {f.nvme_gbs, "--nvme-bw"},
                                  {f.pcie_gbs, "--pcie-bw"}})
        if (v <= 0) throw UsageError(fmt::format("{} must be positive", flag));
    for (const auto& [v, flag] : {std::pair{f.cpu_efficiency, "--cpu-eff"},
                                  {f.gpu_efficiency, "--gpu-eff"},
                                  {f.cpu_prefill_efficiency, "--cpu-prefill-eff"},
                                  {f.gpu_prefill_efficiency, "--gpu-prefill-eff"}})
        if (v <= 0 || v > 1) throw UsageError(fmt::format("{} must be in (0, 1]", flag));
    if (given) f.source += "; some figures given on the command line";
    return f;
}

// Bytes and counts per tier and part; routed experts counted in (layer, expert) units.
struct TierSummary {
    std::map<Part, uint64_t> bytes;
    std::map<Part, int64_t> tensors;
    int64_t experts = 0;  // routed (layer, expert) units
};

std::array<TierSummary, scheduler::kTierCount> summarize(const scheduler::ModelInfo& m,
                                                         const scheduler::Placement& p) {
    std::array<TierSummary, scheduler::kTierCount> s;
    for (size_t i = 0; i < m.tensors.size(); ++i) {
        const scheduler::TensorInfo& t = m.tensors[i];
        const scheduler::TensorPlacement& tp = p.tensors[i];
        if (tp.slabs.empty()) {
            s[static_cast<size_t>(tp.tier)].bytes[t.part] += t.bytes;
            s[static_cast<size_t>(tp.tier)].tensors[t.part] += 1;
            continue;
        }
        for (const Tier tier : tp.slabs)
            s[static_cast<size_t>(tier)].bytes[t.part] += t.slab_bytes();
        // gate, up and down of one expert count once: count the down stacks.
        if (t.name.find("ffn_down_exps") != std::string::npos)
            for (const Tier tier : tp.slabs) s[static_cast<size_t>(tier)].experts += 1;
    }
    return s;
}

std::string reproduce(const PlanArgs& a, const scheduler::Figures& f) {
    std::string cmd =
        "strata plan " + (a.preset.empty() ? "-m " + a.model : "--preset " + a.preset);
    if (!a.arch.empty()) cmd += " --arch " + a.arch;
    if (!a.type.empty()) cmd += " --type " + a.type;
    cmd += fmt::format(" --gpu {} --ram {} --ctx {}", a.gpu, a.ram, a.ctx);
    if (!a.reserve.empty()) cmd += " --gpu-reserve " + a.reserve;
    if (!a.usage.empty()) cmd += " --usage " + a.usage;
    cmd += fmt::format(
        " --ram-bw {:g} --cpu-int8 {:g} --gpu-bw {:g} --gpu-tflops {:g} --pcie-bw {:g} "
        "--pcie-latency-us {:g} --nvme-bw {:g} --cpu-eff {:g} --gpu-eff {:g} --cpu-prefill-eff "
        "{:g} --gpu-prefill-eff {:g} "
        "--paper",
        f.ram_gbs, f.cpu_int8_gops, f.gpu_gbs, f.gpu_tflops, f.pcie_gbs, f.pcie_latency_us,
        f.nvme_gbs, f.cpu_efficiency, f.gpu_efficiency, f.cpu_prefill_efficiency,
        f.gpu_prefill_efficiency);
    return cmd;
}

void run(PlanArgs& a) {
    const scheduler::Hardware hw = scheduler::detect_hardware();
    if (a.ram.empty()) a.ram = fmt::format("{}M", hw.ram_available_bytes >> 20);
    scheduler::Budgets b;
    b.gpu_bytes = parse_size("--gpu", a.gpu, 0);
    b.ram_bytes = parse_size("--ram", a.ram, hw.ram_total_bytes);
    if (!a.reserve.empty())
        b.gpu_reserve_bytes = static_cast<int64_t>(parse_size("--gpu-reserve", a.reserve, 0));
    b.ctx = a.ctx;
    std::string source;
    const scheduler::ModelInfo m = load_info(a, &source);
    const scheduler::RoutingProfile usage =
        a.usage.empty() ? scheduler::RoutingProfile{} : scheduler::read_routing_profile(a.usage);
    if (!usage.empty() && !m.moe())
        throw UsageError(fmt::format("--usage: {} has no routed experts", m.name));
    const scheduler::Figures f = load_figures(a, hw);
    const scheduler::Placement p = scheduler::plan(m, f, b, usage);
    const auto s = summarize(m, p);
    const scheduler::Prediction& pr = p.prediction;
    uint64_t weights = 0;
    int64_t units = 0;
    for (const auto& t : m.tensors) weights += t.bytes;
    for (const auto& ts : s) units += ts.experts;

    const uint64_t budget[3] = {b.gpu_bytes, b.ram_bytes, 0};
    const uint64_t used[3] = {p.gpu_used(), p.ram_used(), p.bytes[2]};
    if (a.json) {
        nlohmann::json j;
        j["model"] = {{"name", m.name},         {"source", source},
                      {"arch", m.arch},         {"layers", m.n_layer},
                      {"experts", m.n_expert},  {"experts_used", m.n_expert_used},
                      {"weight_bytes", weights}};
        j["budgets"] = {{"gpu_bytes", b.gpu_bytes},
                        {"ram_bytes", b.ram_bytes},
                        {"ctx", b.ctx},
                        {"gpu_reserve_bytes", p.gpu_reserve}};
        for (int t = 0; t < scheduler::kTierCount; ++t) {
            nlohmann::json tier;
            tier["bytes"] = p.bytes[static_cast<size_t>(t)];
            tier["used_bytes"] = used[t];
            if (t < 2) tier["budget_bytes"] = budget[t];
            for (const auto& [part, bytes] : s[static_cast<size_t>(t)].bytes)
                tier["parts"][std::string(scheduler::part_name(part))] = bytes;
            tier["routed_experts"] = s[static_cast<size_t>(t)].experts;
            j["tiers"][std::string(scheduler::tier_name(static_cast<Tier>(t)))] = tier;
        }
        j["kv_cache"] = {{"bytes", p.kv_bytes}, {"gpu_bytes", p.kv_gpu_bytes}};
        j["ram_cache"] = {
            {"bytes", p.ram_cache_bytes}, {"slots", p.cache_slots}, {"slot_bytes", p.slot_bytes}};
        j["dense_split"] = {{"kind", std::string(scheduler::split_name(p.split))},
                            {"gpu_layers", p.gpu_layers}};
        j["prediction"] = {
            {"decode_tps", pr.decode_tps},   {"decode_bottleneck", pr.decode_bottleneck},
            {"prefill_tps", pr.prefill_tps}, {"prefill_bottleneck", pr.prefill_bottleneck},
            {"gpu_ms", pr.gpu_ms},           {"cpu_ms", pr.cpu_ms},
            {"nvme_ms", pr.nvme_ms},         {"pcie_ms", pr.pcie_ms},
            {"crossings", pr.crossings},     {"cache_hit_rate", pr.cache_hit_rate}};
        j["figures"] = {{"source", f.source},
                        {"ram_gbs", f.ram_gbs},
                        {"cpu_int8_gops", f.cpu_int8_gops},
                        {"gpu_gbs", f.gpu_gbs},
                        {"gpu_tflops", f.gpu_tflops},
                        {"pcie_gbs", f.pcie_gbs},
                        {"pcie_latency_us", f.pcie_latency_us},
                        {"nvme_gbs", f.nvme_gbs},
                        {"cpu_efficiency", f.cpu_efficiency},
                        {"gpu_efficiency", f.gpu_efficiency},
                        {"cpu_prefill_efficiency", f.cpu_prefill_efficiency},
                        {"gpu_prefill_efficiency", f.gpu_prefill_efficiency}};
        nlohmann::json tensors = nlohmann::json::array();
        for (size_t i = 0; i < m.tensors.size(); ++i) {
            nlohmann::json t = {{"name", m.tensors[i].name},
                                {"bytes", m.tensors[i].bytes},
                                {"tier", std::string(scheduler::tier_name(p.tensors[i].tier))}};
            if (!p.tensors[i].slabs.empty()) {
                nlohmann::json gpu = nlohmann::json::array();
                for (size_t e = 0; e < p.tensors[i].slabs.size(); ++e)
                    if (p.tensors[i].slabs[e] == Tier::Gpu) gpu.push_back(e);
                t["gpu_experts"] = gpu;
            }
            tensors.push_back(t);
        }
        j["tensors"] = tensors;
        j["reproduce"] = reproduce(a, f);
        fmt::print("{}\n", j.dump(2));
        return;
    }

    fmt::print("model: {} ({}, {} layers", m.name, m.arch, m.n_layer);
    if (m.moe()) fmt::print(", {} routed experts, {} used", m.n_expert, m.n_expert_used);
    fmt::print("), {} of weights; KV cache {} at --ctx {}\n", gib(weights), gib(p.kv_bytes), b.ctx);
    fmt::print("usage: {}\n", usage.empty() ? "uniform (no --usage profile)" : a.usage);
    fmt::print("\n{:<6} {:>12} {:>12}  {}\n", "tier", "used", "budget", "what is there");
    for (int t = 0; t < scheduler::kTierCount; ++t) {
        const TierSummary& ts = s[static_cast<size_t>(t)];
        std::vector<std::string> what;
        for (const auto& [part, bytes] : ts.bytes) {
            if (part == Part::RoutedExperts) continue;
            what.push_back(fmt::format("{} {}", scheduler::part_name(part), gib(bytes)));
        }
        if (ts.experts > 0)
            what.push_back(fmt::format("routed experts {} of {} ({})", ts.experts, units,
                                       gib(ts.bytes.at(Part::RoutedExperts))));
        if (t == 0 && p.kv_gpu_bytes > 0) what.push_back("KV cache " + gib(p.kv_gpu_bytes));
        if (t == 1 && p.kv_bytes > p.kv_gpu_bytes)
            what.push_back("KV cache " + gib(p.kv_bytes - p.kv_gpu_bytes));
        if (t == 0 && p.gpu_reserve > 0) what.push_back("reserve " + gib(p.gpu_reserve));
        if (t == 1 && p.ram_cache_bytes > 0)
            what.push_back(fmt::format("RAM cache {} slots of {} ({})", p.cache_slots,
                                       gib(p.slot_bytes), gib(p.ram_cache_bytes)));
        if (t == 2 && ts.experts > 0) what.back() += ", read through the RAM cache";
        std::string joined;
        for (const auto& w : what) joined += (joined.empty() ? "" : ", ") + w;
        fmt::print("{:<6} {:>12} {:>12}  {}\n", scheduler::tier_name(static_cast<Tier>(t)),
                   gib(used[t]), t < 2 ? gib(budget[t]) : "-", joined.empty() ? "-" : joined);
    }
    fmt::print("budgets kept: GPU {} <= {}: {}; RAM {} <= {}: {}\n", gib(used[0]), gib(budget[0]),
               used[0] <= budget[0] ? "yes" : "NO", gib(used[1]), gib(budget[1]),
               used[1] <= budget[1] ? "yes" : "NO");
    if (p.split != scheduler::DenseSplit::None)
        fmt::print(
            "dense split: {}, {} of {} layers' {} on the GPU\n", scheduler::split_name(p.split),
            p.gpu_layers, m.n_layer,
            p.split == scheduler::DenseSplit::WholeLayers ? "blocks" : "FFNs (all attention)");
    fmt::print("\npredicted decode:  {:.2f} tok/s, bottleneck {}\n", pr.decode_tps,
               pr.decode_bottleneck);
    fmt::print(
        "  per token: GPU {:.2f} ms, CPU {:.2f} ms, NVMe {:.2f} ms (routed parts overlap), "
        "PCIe {:.2f} ms ({} crossings); RAM cache hit rate {:.1f}%; KV reads not counted "
        "(short context)\n",
        pr.gpu_ms, pr.cpu_ms, pr.nvme_ms, pr.pcie_ms, pr.crossings, pr.cache_hit_rate * 100);
    fmt::print("predicted prefill: {:.1f} tok/s (batches of {}), bottleneck {}\n", pr.prefill_tps,
               f.prefill_batch, pr.prefill_bottleneck);
    fmt::print("\nfigures: {}\n", f.source);
    fmt::print(
        "  CPU {:g} GB/s read x {:g} efficiency, {:g} G int8 MAC/s; GPU {:g} GB/s x {:g}, "
        "{:g} TFLOPS; PCIe {:g} GB/s + {:g} us; NVMe {:g} GB/s; prefill efficiency CPU {:g}, GPU "
        "{:g}\n",
        f.ram_gbs, f.cpu_efficiency, f.cpu_int8_gops, f.gpu_gbs, f.gpu_efficiency, f.gpu_tflops,
        f.pcie_gbs, f.pcie_latency_us, f.nvme_gbs, f.cpu_prefill_efficiency,
        f.gpu_prefill_efficiency);
    fmt::print("reproduce: {}\n", reproduce(a, f));
}

}  // namespace

void add_plan(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "plan", "Place a model's tensors on GPU, RAM and NVMe under budgets; predict its speed");
    auto a = std::make_shared<PlanArgs>();
    cmd->add_option("-m,--model", a->model, "GGUF model (first shard); only its header is read");
    cmd->add_option("--preset", a->preset,
                    "a `strata synth` preset's shapes instead of a file (r1-671b, ...)");
    cmd->add_option("--arch", a->arch, "--preset tiny / bench: deepseek2, llama or qwen2");
    cmd->add_option("--type", a->type, "--preset: quantization (default Q4_K_M)");
    cmd->add_option("--gpu", a->gpu, "GPU budget, e.g. 24G (default 0: no GPU)");
    cmd->add_option("--ram", a->ram, "RAM budget, e.g. 128G or 80% (default: available memory)");
    cmd->add_option("--gpu-reserve", a->reserve,
                    "kept free on the GPU for activations (default 1G, at most 1/8)");
    cmd->add_option("--ctx", a->ctx, "KV cache positions (default 4096)");
    cmd->add_option("--usage", a->usage,
                    "routing profile JSON ({\"layers\":[{\"layer\":L,\"counts\":[...]}]})");
    cmd->add_flag("--json", a->json, "print the placement as JSON");
    cmd->add_option("--figures", a->figures_path,
                    "hardware figures file (default ~/.cache/strata/hardware.json)");
    cmd->add_flag("--probe", a->probe, "measure this CPU again and rewrite the figures file");
    cmd->add_flag("--paper", a->paper, "use published figures, not this machine's (see --*-bw)");
    cmd->add_option("--ram-bw", a->ram_gbs, "CPU read bandwidth, GB/s");
    cmd->add_option("--cpu-int8", a->cpu_int8_gops, "CPU int8 multiply-adds, G/s");
    cmd->add_option("--gpu-bw", a->gpu_gbs, "GPU memory bandwidth, GB/s");
    cmd->add_option("--gpu-tflops", a->gpu_tflops, "GPU dense fp16 TFLOPS");
    cmd->add_option("--pcie-bw", a->pcie_gbs, "PCIe host-to-device GB/s");
    cmd->add_option("--pcie-latency-us", a->pcie_latency_us, "one PCIe crossing's latency, us");
    cmd->add_option("--nvme-bw", a->nvme_gbs, "NVMe read GB/s");
    cmd->add_option("--cpu-eff", a->cpu_eff,
                    "share of read bandwidth CPU decode reaches (0.55 measured)");
    cmd->add_option("--gpu-eff", a->gpu_eff, "share of GPU bandwidth decode reaches (0.7 assumed)");
    cmd->add_option("--cpu-prefill-eff", a->cpu_prefill_eff,
                    "share of the int8 peak CPU prefill reaches (0.07 measured)");
    cmd->add_option("--gpu-prefill-eff", a->gpu_prefill_eff,
                    "share of the fp16 peak GPU prefill reaches (0.4 assumed)");
    cmd->callback([a] { run(*a); });
}

}  // namespace strata::cli
