// strata info: what this machine offers — CPU and its features, the kernel chosen per weight
// type, how OpenMP threads wait, NUMA nodes, memory, huge pages and GPUs.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/cli/commands.h"
#include "runtime/progress.h"
#include "scheduler/hardware.h"
#include "simd/dispatch.h"
#include "simd/probe.h"

namespace strata::cli {

namespace {

// Weight types Strata computes with, in the order users meet them.
constexpr quant::Type kWeightTypes[] = {
    quant::Type::F32,  quant::Type::F16,  quant::Type::BF16, quant::Type::Q4_0, quant::Type::Q4_1,
    quant::Type::Q5_0, quant::Type::Q5_1, quant::Type::Q8_0, quant::Type::Q2_K, quant::Type::Q3_K,
    quant::Type::Q4_K, quant::Type::Q5_K, quant::Type::Q6_K};

// How OpenMP threads wait at barriers in this process, as the environment tells libgomp:
// "OMP_WAIT_POLICY=…", "GOMP_SPINCOUNT=…", or "libgomp default".
std::string openmp_wait() {
    if (const char* p = std::getenv("OMP_WAIT_POLICY")) return std::string("OMP_WAIT_POLICY=") + p;
    if (const char* c = std::getenv("GOMP_SPINCOUNT")) return std::string("GOMP_SPINCOUNT=") + c;
    return "libgomp default";
}

void print_text(const scheduler::Hardware& hw) {
    fmt::print("strata {}\n", STRATA_VERSION);
    fmt::print("cpu:        {} ({} cores, {} logical CPUs)\n",
               hw.cpu_name.empty() ? "unknown" : hw.cpu_name, hw.physical_cores, hw.logical_cpus);
    fmt::print("features:   {}\n", hw.cpu_features);
    std::string kernels;
    for (quant::Type t : kWeightTypes) {
        const dispatch::TypeKernels& k = dispatch::kernels()[t];
        kernels += fmt::format("{}{} {}", kernels.empty() ? "" : ", ", quant::type_name(t),
                               dispatch::isa_name(k.vec_dot_isa));
        if (k.tile != nullptr) kernels += fmt::format(" (tile {})", dispatch::isa_name(k.tile_isa));
    }
    fmt::print("kernels:    {}\n", kernels);
    fmt::print("openmp:     {}\n", openmp_wait());
    fmt::print("memory:     {} total, {} available\n", format_bytes(hw.ram_total_bytes),
               format_bytes(hw.ram_available_bytes));
    fmt::print("huge pages: {} free of {}\n", hw.hugepages_free, format_bytes(hw.hugepage_bytes));
    for (const auto& n : hw.numa_nodes) {
        fmt::print("numa node {}: {} cores, {}\n", n.index, n.cores, format_bytes(n.memory_bytes));
    }
    if (hw.gpus.empty()) fmt::print("gpus:       none ({})\n", hw.gpu_note);
    for (const auto& g : hw.gpus) {
        fmt::print("gpu {}:      {} (compute {}.{}), {} total, {} free\n", g.index, g.name,
                   g.compute_major, g.compute_minor, format_bytes(g.total_bytes),
                   format_bytes(g.free_bytes));
    }
}

nlohmann::json to_json(const scheduler::Hardware& hw) {
    nlohmann::json j;
    j["version"] = STRATA_VERSION;
    j["cpu"] = hw.cpu_name;
    j["physical_cores"] = hw.physical_cores;
    j["logical_cpus"] = hw.logical_cpus;
    j["features"] = hw.cpu_features;
    j["kernels"] = nlohmann::json::object();
    for (quant::Type t : kWeightTypes) {
        j["kernels"][std::string(quant::type_name(t))] =
            std::string(dispatch::isa_name(dispatch::kernels()[t].vec_dot_isa));
    }
    j["tiles"] = nlohmann::json::object();
    for (quant::Type t : kWeightTypes) {
        const dispatch::TypeKernels& k = dispatch::kernels()[t];
        if (k.tile != nullptr)
            j["tiles"][std::string(quant::type_name(t))] =
                std::string(dispatch::isa_name(k.tile_isa));
    }
    j["openmp_wait"] = openmp_wait();
    j["ram_total_bytes"] = hw.ram_total_bytes;
    j["ram_available_bytes"] = hw.ram_available_bytes;
    j["hugepage_bytes"] = hw.hugepage_bytes;
    j["hugepages_free"] = hw.hugepages_free;
    j["numa_nodes"] = nlohmann::json::array();
    for (const auto& n : hw.numa_nodes) {
        j["numa_nodes"].push_back(
            {{"index", n.index}, {"cores", n.cores}, {"memory_bytes", n.memory_bytes}});
    }
    j["gpus"] = nlohmann::json::array();
    for (const auto& g : hw.gpus) {
        j["gpus"].push_back({{"index", g.index},
                             {"name", g.name},
                             {"compute", fmt::format("{}.{}", g.compute_major, g.compute_minor)},
                             {"total_bytes", g.total_bytes},
                             {"free_bytes", g.free_bytes}});
    }
    if (hw.gpus.empty()) j["gpu_note"] = hw.gpu_note;
    return j;
}

// The machine's limits, measured (simd/probe.h): read bandwidth with one thread and with
// `threads`, and the int8 peak with `threads`. Takes a few seconds.
struct Probes {
    simd::ReadProbe read_one, read_all;
    simd::Int8Probe int8;
};

Probes run_probes(int threads) {
    const size_t bytes = simd::default_probe_bytes();
    Probes p;
    p.read_one = simd::probe_read_bandwidth(1, bytes);
    p.read_all = simd::probe_read_bandwidth(threads, bytes);
    p.int8 = simd::probe_int8_peak(threads);
    return p;
}

void print_probes(const Probes& p) {
    fmt::print(
        "probe read: {:.1f} GB/s (1 thread), {:.1f} GB/s ({} threads), {} buffer, {} loads\n",
        p.read_one.gb_per_s, p.read_all.gb_per_s, p.read_all.threads,
        format_bytes(p.read_all.bytes), p.read_all.kernel);
    fmt::print("probe int8: {:.0f} GOP/s ({} threads, {})\n", p.int8.gop_per_s, p.int8.threads,
               p.int8.kernel);
}

nlohmann::json probes_json(const Probes& p) {
    return {{"read_gb_per_s_1_thread", p.read_one.gb_per_s},
            {"read_gb_per_s", p.read_all.gb_per_s},
            {"read_threads", p.read_all.threads},
            {"read_bytes", p.read_all.bytes},
            {"read_kernel", p.read_all.kernel},
            {"int8_gop_per_s", p.int8.gop_per_s},
            {"int8_threads", p.int8.threads},
            {"int8_kernel", p.int8.kernel}};
}

}  // namespace

void add_info(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("info", "Show CPU features, kernels, NUMA nodes, memory and GPUs");
    static bool json = false;
    static bool probe = false;
    static int probe_threads = 0;
    cmd->add_flag("--json", json, "Print one JSON object");
    cmd->add_flag("--probe", probe,
                  "Also measure the memory read bandwidth and the int8 peak (a few seconds)");
    cmd->add_option("--probe-threads", probe_threads,
                    "Threads for --probe's second measurement (default: physical cores)")
        ->check(CLI::Range(1, 4096));
    cmd->callback([] {
        const scheduler::Hardware hw = scheduler::detect_hardware();
        const int threads = probe_threads > 0 ? probe_threads : std::max(hw.physical_cores, 1);
        if (json) {
            nlohmann::json j = to_json(hw);
            if (probe) j["probe"] = probes_json(run_probes(threads));
            fmt::print("{}\n", j.dump());
        } else {
            print_text(hw);
            if (probe) print_probes(run_probes(threads));
        }
    });
}

}  // namespace strata::cli
