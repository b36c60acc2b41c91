// Machine limits measured in place: the read bandwidth of memory and the int8 multiply-add peak.
// `strata info --probe` prints them; benchmarks and `strata bench` compare kernels against them
// (decode is bound by the first, prefill by the second).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace strata::simd {

struct ReadProbe {
    double gb_per_s = 0.0;  // 1e9 bytes per second, best of the passes
    size_t bytes = 0;       // buffer read per pass
    int threads = 0;
    std::string kernel;  // "avx512", "avx2" or "scalar": the widest load this CPU runs
};

struct Int8Probe {
    double gop_per_s = 0.0;  // 1e9 int8 operations (a multiply and an add each) per second
    int threads = 0;
    std::string kernel;  // "avx512-vnni" or "avx2" (vpmaddubsw + vpmaddwd); "none" without AVX2
};

// The last-level cache of this machine in bytes (sysconf; 32 MiB where it says nothing).
size_t last_level_cache_bytes();

// The default probe buffer: 4× the last-level cache, so that no pass is served from cache,
// capped at 1 GiB (some VMs report the whole socket's L3, hundreds of MiB).
size_t default_probe_bytes();

// Reads `bytes` (rounded down to 4 KiB) with `threads` OpenMP threads, each its own contiguous
// part, `passes` times after one untimed pass that faults the pages in; the best pass counts.
ReadProbe probe_read_bandwidth(int threads, size_t bytes, int passes = 5);

// A loop of independent int8 dot-product instructions in registers (no memory traffic) on
// `threads` threads for about `seconds`.
Int8Probe probe_int8_peak(int threads, double seconds = 0.2);

}  // namespace strata::simd
