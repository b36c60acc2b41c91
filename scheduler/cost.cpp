// The cost model (scheduler/cost.h) and the figures it runs on.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "scheduler/plan.h"
#include "simd/probe.h"

namespace strata::scheduler {

Figures published_figures() {
    Figures f;
    f.gpu_gbs = 1000;  // RTX 4090: 1008 GB/s
    f.gpu_tflops = 165;
    f.pcie_gbs = 25;  // PCIe 4.0 x16: 32 GB/s raw, ~25 GB/s in pinned copies
    f.pcie_latency_us = 10;
    f.ram_gbs = 300;         // 8 channels of DDR5-4800: 307 GB/s
    f.cpu_int8_gops = 4000;  // 32 cores × 2 GHz × 64 VNNI multiply-adds per cycle
    f.nvme_gbs = 7;
    f.source =
        "published figures (24 GB GPU at 1 TB/s, PCIe 4 x16, 8-channel DDR5 300 GB/s, "
        "Gen4 NVMe 7 GB/s)";
    return f;
}

namespace {

// The numeric fields, by their JSON names.
struct Field {
    const char* name;
    double Figures::*member;
};
constexpr Field kFields[] = {
    {"ram_gbs", &Figures::ram_gbs},
    {"cpu_int8_gops", &Figures::cpu_int8_gops},
    {"gpu_gbs", &Figures::gpu_gbs},
    {"gpu_tflops", &Figures::gpu_tflops},
    {"pcie_gbs", &Figures::pcie_gbs},
    {"pcie_latency_us", &Figures::pcie_latency_us},
    {"nvme_gbs", &Figures::nvme_gbs},
    {"cpu_efficiency", &Figures::cpu_efficiency},
    {"gpu_efficiency", &Figures::gpu_efficiency},
    {"cpu_prefill_efficiency", &Figures::cpu_prefill_efficiency},
    {"gpu_prefill_efficiency", &Figures::gpu_prefill_efficiency},
};

}  // namespace

Figures read_figures(const std::string& path, const Figures& base) {
    std::ifstream in(path);
    if (!in) fail("hardware figures '{}': cannot open", path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        fail("hardware figures '{}': not JSON ({})", path, e.what());
    }
    if (!j.is_object()) fail("hardware figures '{}': expected a JSON object", path);
    Figures f = base;
    for (const Field& field : kFields) {
        if (!j.contains(field.name)) continue;
        const nlohmann::json& v = j[field.name];
        if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
            fail("hardware figures '{}': \"{}\" is not a non-negative number", path, field.name);
        f.*field.member = v.get<double>();
    }
    f.source = "cached in " + path;
    return f;
}

void write_figures(const std::string& path, const Figures& figures) {
    nlohmann::json j = nlohmann::json::object();
    for (const Field& field : kFields) j[field.name] = figures.*field.member;
    std::error_code ec;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    std::ofstream out(path, std::ios::trunc);
    if (!out) fail("hardware figures '{}': cannot write", path);
    out << j.dump(2) << '\n';
    if (!out) fail("hardware figures '{}': write failed", path);
}

std::string default_figures_path() {
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
        return std::string(xdg) + "/strata/hardware.json";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::string(home) + "/.cache/strata/hardware.json";
    return "";
}

Figures probe_cpu_figures(int threads, const Figures& base) {
    Figures f = base;
    f.ram_gbs = simd::probe_read_bandwidth(threads, simd::default_probe_bytes()).gb_per_s;
    f.cpu_int8_gops = simd::probe_int8_peak(threads).gop_per_s;
    f.source = "probed here (CPU read bandwidth and int8 peak)";
    return f;
}

namespace {

bool on_gpu(Tier t) {
    return t == Tier::Gpu;
}

// Sides of a pipeline stage: which of GPU and CPU hold weights it reads.
struct Stage {
    bool gpu = false, cpu = false;
};

// PCIe crossings per token of a sequence of stages, starting on the CPU (the token's embedding
// row is looked up there) and ending there (the sampler). A stage with weights on both sides
// sends the hidden state across and gets the partial result back: two crossings, staying where
// it started.
int64_t count_crossings(const std::vector<Stage>& stages) {
    int64_t n = 0;
    bool at_gpu = false;
    for (const Stage& s : stages) {
        if (!s.gpu && !s.cpu) continue;
        if (s.gpu && s.cpu) {
            n += 2;
            continue;
        }
        if (s.gpu != at_gpu) {
            ++n;
            at_gpu = s.gpu;
        }
    }
    return n + (at_gpu ? 1 : 0);
}

}  // namespace

Prediction predict(const ModelInfo& model, const Placement& placement, const Figures& figures,
                   const std::vector<std::vector<double>>& usage) {
    const double gpu_bw = figures.gpu_gbs * figures.gpu_efficiency * 1e9;
    const double cpu_bw = figures.ram_gbs * figures.cpu_efficiency * 1e9;
    const double nvme_bw = figures.nvme_gbs * 1e9;
    const double batch = static_cast<double>(std::max<int64_t>(1, figures.prefill_batch));

    // Bytes read and multiply-adds per decode token by side; prefill bytes are per batch.
    double gpu_shared = 0, cpu_shared = 0, gpu_routed = 0, cpu_routed = 0;
    double gpu_shared_mac = 0, cpu_shared_mac = 0, gpu_routed_mac = 0, cpu_routed_mac = 0;
    double gpu_batch_bytes = 0, cpu_batch_bytes = 0;
    // NVMe-homed experts: (expected reads per token, unit bytes, touched per prefill batch).
    struct NvmeUnit {
        double reads, bytes, macs;
    };
    std::vector<NvmeUnit> nvme_units;
    // Pipeline: the global stage before the blocks (none: the lookup is on the CPU), per block an
    // attention stage and an FFN stage, then the output stage.
    std::vector<Stage> stages(static_cast<size_t>(2 * model.n_layer + 1));
    // NVMe unit bytes and reads, keyed by layer × n_expert + expert.
    std::vector<double> unit_bytes, unit_macs;
    if (model.moe()) {
        unit_bytes.assign(static_cast<size_t>(model.n_layer * model.n_expert), 0.0);
        unit_macs = unit_bytes;
    }

    for (size_t i = 0; i < model.tensors.size(); ++i) {
        const TensorInfo& t = model.tensors[i];
        const TensorPlacement& p = placement.tensors[i];
        const double bytes = static_cast<double>(t.bytes);
        const double macs = static_cast<double>(t.n_elements);
        Stage* stage = nullptr;
        if (t.layer >= 0) {
            const bool attention = t.part == Part::Attention || t.part == Part::Norm;
            stage = &stages[static_cast<size_t>(2 * t.layer + (attention ? 0 : 1))];
        } else if (t.part == Part::Output || t.part == Part::Norm) {
            stage = &stages.back();
        }
        if (t.part == Part::RoutedExperts) {
            const auto& u = usage[static_cast<size_t>(t.layer)];
            const double slab = static_cast<double>(t.slab_bytes());
            const double slab_mac = macs / static_cast<double>(t.n_expert);
            for (int64_t e = 0; e < t.n_expert; ++e) {
                const double r = u[static_cast<size_t>(e)];
                const Tier tier = p.slabs[static_cast<size_t>(e)];
                // Experts a batch touches at least once: 1 - (1 - share)^batch of them.
                const double touched = 1.0 - std::pow(std::max(0.0, 1.0 - r), batch);
                if (r > 0 && stage) (on_gpu(tier) ? stage->gpu : stage->cpu) = true;
                if (tier == Tier::Gpu) {
                    gpu_routed += r * slab;
                    gpu_routed_mac += r * slab_mac;
                    gpu_batch_bytes += touched * slab;
                } else if (tier == Tier::Ram) {
                    cpu_routed += r * slab;
                    cpu_routed_mac += r * slab_mac;
                    cpu_batch_bytes += touched * slab;
                } else {
                    const size_t k = static_cast<size_t>(t.layer * model.n_expert + e);
                    unit_bytes[k] += slab;
                    unit_macs[k] += slab_mac;
                }
            }
            continue;
        }
        // A token reads one row of the embedding table.
        const double read = t.part == Part::TokenEmbd && t.n_elements > 0
                                ? bytes * static_cast<double>(model.n_embd) / macs
                                : bytes;
        const double mac = t.part == Part::TokenEmbd ? 0.0 : macs;
        if (stage) (on_gpu(p.tier) ? stage->gpu : stage->cpu) = true;
        if (on_gpu(p.tier)) {
            gpu_shared += read;
            gpu_shared_mac += mac;
            gpu_batch_bytes += bytes;
        } else {
            cpu_shared += read;
            cpu_shared_mac += mac;
            cpu_batch_bytes += bytes;
        }
    }
    if (model.moe()) {
        for (int64_t l = 0; l < model.n_layer; ++l) {
            const auto& u = usage[static_cast<size_t>(l)];
            for (int64_t e = 0; e < model.n_expert; ++e) {
                const size_t k = static_cast<size_t>(l * model.n_expert + e);
                if (unit_bytes[k] > 0)
                    nvme_units.push_back({u[static_cast<size_t>(e)], unit_bytes[k], unit_macs[k]});
                if (unit_bytes[k] > 0 && u[static_cast<size_t>(e)] > 0)
                    stages[static_cast<size_t>(2 * l + 1)].cpu = true;
            }
        }
    }

    // The RAM cache in steady state holds the hottest NVMe-homed experts (the pinned policy
    // with a profile; LRU and LFU do worse on a cold start): cache_slots of them hit, the rest
    // are read from NVMe.
    std::sort(nvme_units.begin(), nvme_units.end(),
              [](const NvmeUnit& a, const NvmeUnit& b) { return a.reads > b.reads; });
    double hit_bytes = 0, miss_bytes = 0, hit_batch = 0, miss_batch = 0, nvme_mac = 0;
    double hit_reads = 0, all_reads = 0;
    for (size_t i = 0; i < nvme_units.size(); ++i) {
        const NvmeUnit& n = nvme_units[i];
        const double touched = 1.0 - std::pow(std::max(0.0, 1.0 - n.reads), batch);
        const bool hit = static_cast<int64_t>(i) < placement.cache_slots;
        (hit ? hit_bytes : miss_bytes) += n.reads * n.bytes;
        (hit ? hit_batch : miss_batch) += touched * n.bytes;
        (hit ? hit_reads : all_reads) += n.reads;
        nvme_mac += n.reads * n.macs;
    }
    all_reads += hit_reads;

    Prediction pr;
    pr.cache_hit_rate = all_reads > 0 ? hit_reads / all_reads : 1.0;
    pr.crossings = count_crossings(stages);
    const double hidden = static_cast<double>(model.n_embd) * sizeof(float);
    const double crossing_s = figures.pcie_latency_us * 1e-6 + hidden / (figures.pcie_gbs * 1e9);
    const double pcie_s = figures.pcie_gbs > 0 ? static_cast<double>(pr.crossings) * crossing_s : 0;

    // Decode: the shared parts in turn, the routed experts of both sides at once.
    const auto time = [](double bytes, double bw) { return bytes > 0 ? bytes / bw : 0.0; };
    const double g_shared = time(gpu_shared, gpu_bw), c_shared = time(cpu_shared, cpu_bw);
    const double g_routed = time(gpu_routed, gpu_bw);
    const double c_routed = time(cpu_routed + hit_bytes, cpu_bw);
    const double n_routed = time(miss_bytes, nvme_bw);
    const double routed = std::max({g_routed, c_routed, n_routed});
    const double decode_s = g_shared + c_shared + routed + pcie_s;
    pr.gpu_ms = (g_shared + g_routed) * 1e3;
    pr.cpu_ms = (c_shared + c_routed) * 1e3;
    pr.nvme_ms = n_routed * 1e3;
    pr.pcie_ms = pcie_s * 1e3;
    pr.decode_tps = decode_s > 0 ? 1.0 / decode_s : 0;
    {
        const double gpu = g_shared + (routed == g_routed ? g_routed : 0);
        const double cpu = c_shared + (routed == c_routed && routed != g_routed ? c_routed : 0);
        const double nvme =
            routed == n_routed && routed != g_routed && routed != c_routed ? n_routed : 0;
        const double top = std::max({gpu, cpu, nvme, pcie_s});
        pr.decode_bottleneck = top == gpu    ? "GPU memory bandwidth"
                               : top == cpu  ? "CPU memory bandwidth"
                               : top == nvme ? "NVMe reads (RAM cache misses)"
                                             : "PCIe crossings (latency)";
    }

    // Prefill per token: arithmetic, or each weight read once per batch, whichever is slower on
    // each side; the misses of a batch come from NVMe once.
    const double gpu_rate =
        figures.gpu_tflops * 1e12 / 2 * figures.gpu_prefill_efficiency;  // MAC/s
    const double cpu_rate = figures.cpu_int8_gops * 1e9 * figures.cpu_prefill_efficiency;
    const auto side = [&](double macs, double batch_bytes, double rate, double bw) {
        return std::max(macs > 0 ? macs / rate : 0.0, time(batch_bytes / batch, bw));
    };
    const double pg_shared = side(gpu_shared_mac, 0, gpu_rate, gpu_bw);
    const double pc_shared = side(cpu_shared_mac, 0, cpu_rate, cpu_bw);
    const double pg = side(gpu_routed_mac, gpu_batch_bytes, gpu_rate, gpu_bw);
    const double pc =
        side(cpu_routed_mac + nvme_mac, cpu_batch_bytes + hit_batch, cpu_rate, cpu_bw);
    const double pn = time(miss_batch / batch, nvme_bw);
    const double p_pcie =
        figures.pcie_gbs > 0
            ? static_cast<double>(pr.crossings) *
                  (figures.pcie_latency_us * 1e-6 / batch + hidden / (figures.pcie_gbs * 1e9))
            : 0;
    const double p_routed = std::max({pg, pc, pn});
    const double prefill_s = pg_shared + pc_shared + p_routed + p_pcie;
    pr.prefill_tps = prefill_s > 0 ? 1.0 / prefill_s : 0;
    {
        const double gpu = pg_shared + (p_routed == pg ? pg : 0);
        const double cpu = pc_shared + (p_routed == pc && p_routed != pg ? pc : 0);
        const double nvme = p_routed == pn && p_routed != pg && p_routed != pc ? pn : 0;
        const double top = std::max({gpu, cpu, nvme, p_pcie});
        pr.prefill_bottleneck = top == gpu    ? "GPU compute"
                                : top == cpu  ? "CPU int8 compute"
                                : top == nvme ? "NVMe reads (experts a batch touches)"
                                              : "PCIe transfers";
    }
    return pr;
}

}  // namespace strata::scheduler
