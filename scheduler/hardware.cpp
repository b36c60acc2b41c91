#include "scheduler/hardware.h"

#include <hwloc.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string_view>

#include "simd/dispatch.h"

namespace strata::scheduler {

namespace {

std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("model name")) continue;
        const size_t colon = line.find(':');
        if (colon != std::string::npos)
            return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
    return "";
}

// Cores and NUMA nodes from hwloc; without it (a failed topology load) the counts stay from
// sysconf.
void read_topology(Hardware& hw) {
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return;
    }
    hw.physical_cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    const int nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    for (int i = 0; i < nodes; ++i) {
        hwloc_obj_t node =
            hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
        NumaNode n;
        n.index = static_cast<int>(node->os_index);
        n.memory_bytes = node->attr ? node->attr->numanode.local_memory : 0;
        n.cores = hwloc_get_nbobjs_inside_cpuset_by_type(topo, node->cpuset, HWLOC_OBJ_CORE);
        hw.numa_nodes.push_back(n);
    }
    hwloc_topology_destroy(topo);
}

}  // namespace

uint64_t meminfo(std::string_view key) {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with(key) || line.size() <= key.size() || line[key.size()] != ':')
            continue;
        std::istringstream fields(line.substr(key.size() + 1));
        uint64_t value = 0;
        std::string unit;
        fields >> value >> unit;
        return unit == "kB" ? value * 1024 : value;
    }
    return 0;
}

Hardware detect_hardware() {
    Hardware hw;
    hw.cpu_name = cpu_model_name();
    hw.logical_cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
    hw.physical_cores = hw.logical_cpus;
    read_topology(hw);
    hw.ram_total_bytes = meminfo("MemTotal");
    hw.ram_available_bytes = meminfo("MemAvailable");
    hw.hugepage_bytes = meminfo("Hugepagesize");
    hw.hugepages_free = meminfo("HugePages_Free");
    hw.cpu_features = dispatch::to_string(dispatch::features());
    hw.gpus = cuda::devices(&hw.gpu_note);
    return hw;
}

}  // namespace strata::scheduler
