// What this machine offers the planner: cores, NUMA nodes and their memory, RAM, GPUs, and the
// CPU features the kernels were chosen for. Detected once per call; nothing is cached here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/device.h"

namespace strata::scheduler {

struct NumaNode {
    int index = 0;
    uint64_t memory_bytes = 0;  // local memory (0 when hwloc cannot tell)
    int cores = 0;              // physical cores in the node
};

struct Hardware {
    std::string cpu_name;  // "Intel(R) Xeon(R) ..." from /proc/cpuinfo, or ""
    int physical_cores = 0;
    int logical_cpus = 0;
    std::vector<NumaNode> numa_nodes;
    uint64_t ram_total_bytes = 0;
    uint64_t ram_available_bytes = 0;
    uint64_t hugepage_bytes = 0;  // size of one huge page (Hugepagesize), 0 if unknown
    uint64_t hugepages_free = 0;  // free preallocated huge pages
    std::string cpu_features;     // dispatch::to_string(features())
    std::vector<cuda::DeviceInfo> gpus;
    std::string gpu_note;  // why there are no GPUs, when there are none
};

Hardware detect_hardware();

// A value of /proc/meminfo in bytes ("MemAvailable" of "MemAvailable:  24000000 kB"); 0 when the
// file or the key is missing.
uint64_t meminfo(std::string_view key);

}  // namespace strata::scheduler
