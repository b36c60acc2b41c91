// Read-bandwidth and int8-peak probes (simd/probe.h). The loops themselves are ISA kernels
// (simd/avx512/probe.cpp, simd/avx2/probe.cpp), chosen by the CPU's features like every kernel.
#include "simd/probe.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "simd/dispatch.h"
#include "simd/probe_kernels.h"

namespace strata::simd {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Sum of the buffer's 64-bit words, so that the compiler keeps every load.
uint64_t read_scalar(const uint8_t* p, size_t bytes) {
    const auto* w = reinterpret_cast<const uint64_t*>(p);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
        s0 += w[i];
        s1 += w[i + 1];
        s2 += w[i + 2];
        s3 += w[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
};

}  // namespace

size_t last_level_cache_bytes() {
    for (int name : {_SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
        const long v = sysconf(name);
        if (v > 0) return static_cast<size_t>(v);
    }
    return size_t{32} << 20;
}

size_t default_probe_bytes() {
    return std::min(4 * last_level_cache_bytes(), size_t{1} << 30);
}

ReadProbe probe_read_bandwidth(int threads, size_t bytes, int passes) {
    const dispatch::CpuFeatures& f = dispatch::features();
    ReadProbe r;
    r.threads = std::max(threads, 1);
    r.bytes = bytes / 4096 * 4096;
    r.kernel = f.avx512_set() ? "avx512" : f.avx2_set() ? "avx2" : "scalar";
    if (r.bytes == 0) return r;
    std::unique_ptr<uint8_t, FreeDeleter> buffer(
        static_cast<uint8_t*>(std::aligned_alloc(4096, r.bytes)));
    if (!buffer) return r;
    uint8_t* data = buffer.get();
    // Each thread's part, 4 KiB aligned; the threads first touch their own parts.
    const size_t part = r.bytes / static_cast<size_t>(r.threads) / 4096 * 4096;
    std::vector<uint64_t> sink(static_cast<size_t>(r.threads) * 8);  // (threads, 8): a line each
    double best = 0.0;
    for (int pass = -1; pass < passes; ++pass) {
        const auto start = Clock::now();
#pragma omp parallel num_threads(r.threads)
        {
            const int t = omp_get_thread_num();
            uint8_t* mine = data + static_cast<size_t>(t) * part;
            if (pass < 0) std::memset(mine, t + 1, part);
            uint64_t s;
            if (f.avx512_set())
                s = probe::read_avx512(mine, part);
            else if (f.avx2_set())
                s = probe::read_avx2(mine, part);
            else
                s = read_scalar(mine, part);
            sink[static_cast<size_t>(t) * 8] += s;
        }
        const double secs = seconds_since(start);
        if (pass >= 0 && secs > 0.0)
            best = std::max(best, static_cast<double>(part) * r.threads / secs / 1e9);
    }
    r.gb_per_s = best;
    return r;
}

Int8Probe probe_int8_peak(int threads, double seconds) {
    const dispatch::CpuFeatures& f = dispatch::features();
    Int8Probe r;
    r.threads = std::max(threads, 1);
    r.kernel = f.avx512_set() ? "avx512-vnni" : f.avx2_set() ? "avx2" : "none";
    if (!f.avx2_set()) return r;
    // Calibrate the iteration count on one thread, then time all threads together.
    int64_t iters = 1 << 16;
    auto run = [&](int64_t n) {
        return f.avx512_set() ? probe::int8_loop_avx512(n) : probe::int8_loop_avx2(n);
    };
    for (;;) {
        const auto start = Clock::now();
        run(iters);
        const double secs = seconds_since(start);
        if (secs > seconds / 10 || iters > (int64_t{1} << 40)) {
            iters =
                static_cast<int64_t>(static_cast<double>(iters) * seconds / std::max(secs, 1e-6));
            break;
        }
        iters *= 4;
    }
    iters = std::max<int64_t>(iters, 1);
    double ops = 0.0;
    const auto start = Clock::now();
#pragma omp parallel num_threads(r.threads) reduction(+ : ops)
    ops += run(iters);
    const double secs = seconds_since(start);
    r.gop_per_s = secs > 0.0 ? ops / secs / 1e9 : 0.0;
    return r;
}

}  // namespace strata::simd
