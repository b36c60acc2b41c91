// strata info: what this machine offers — CPU and its features, the kernel chosen per weight
// type, how OpenMP threads wait, NUMA nodes, memory, huge pages and GPUs.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/cli/commands.h"
#include "runtime/progress.h"
#include "scheduler/hardware.h"
#include "simd/dispatch.h"

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
        kernels += fmt::format("{}{} {}", kernels.empty() ? "" : ", ", quant::type_name(t),
                               dispatch::isa_name(dispatch::kernels()[t].vec_dot_isa));
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

}  // namespace

void add_info(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("info", "Show CPU features, kernels, NUMA nodes, memory and GPUs");
    static bool json = false;
    cmd->add_flag("--json", json, "Print one JSON object");
    cmd->callback([] {
        const scheduler::Hardware hw = scheduler::detect_hardware();
        if (json) {
            fmt::print("{}\n", to_json(hw).dump());
        } else {
            print_text(hw);
        }
    });
}

}  // namespace strata::cli
