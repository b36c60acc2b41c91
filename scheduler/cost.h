// The cost model's inputs and outputs: the machine's figures (measured once and cached, or given
// on the command line for plans "on paper") and the predicted speed of a placement.
//
// Decode reads every weight a token uses once, so its time is bytes over effective bandwidth on
// each side; the GPU and the CPU compute their routed experts at the same time (overlap), the
// rest runs in turn, and each change of side crosses PCIe with the hidden state. Prefill is
// bound by arithmetic (int8 on the CPU, tensor cores on the GPU) or by reading each weight once
// per batch, whichever is slower.
#pragma once

#include <cstdint>
#include <string>

namespace strata::scheduler {

struct Figures {
    double ram_gbs = 0;          // CPU read bandwidth, all cores (1e9 bytes/s)
    double cpu_int8_gops = 0;    // int8 multiply-adds per second, all cores (1e9; simd's probe)
    double gpu_gbs = 0;          // GPU memory bandwidth
    double gpu_tflops = 0;       // GPU dense fp16 tensor rate (1e12 flops: a multiply-add is 2)
    double pcie_gbs = 0;         // host-to-device bandwidth
    double pcie_latency_us = 0;  // one crossing: a launch, a copy and a synchronisation
    double nvme_gbs = 0;  // sequential-ish reads of expert slabs (MiB-sized, queue depth 32+)
    // Share of the read bandwidth that decode reaches. CPU: measured on this project's bench
    // model (`strata bench`: ~55% of `strata info --probe`'s read bandwidth). GPU: assumed.
    double cpu_efficiency = 0.55;
    double gpu_efficiency = 0.70;
    // Share of the arithmetic peak prefill reaches. CPU: measured, `strata bench -p 512` on the
    // bench model (2 cores, 138 tok/s median of 3) against the int8 probe's peak: 0.07 (the probe
    // is a register-only loop; prefill also dequantizes, converts activations and attends).
    // GPU: assumed.
    double cpu_prefill_efficiency = 0.07;
    double gpu_prefill_efficiency = 0.40;
    int64_t prefill_batch = 512;  // tokens per prefill batch: weights are read once per batch
    std::string source;           // where the figures came from ("probed ...", "given", ...)
};

// The published figures of the reference workstation: a 24 GB GPU at 1 TB/s (RTX 4090
// class: 165 dense fp16 TFLOPS), PCIe 4.0 x16 (25 GB/s usable), 8-channel DDR5 at 300 GB/s,
// a Gen4 NVMe at 7 GB/s. The CPU's int8 rate is a 32-core AVX-512 VNNI part's (~8 TOPS).
Figures published_figures();

// Parses and writes the cache file (~/.cache/strata/hardware.json by default): a JSON object of
// the numeric fields above. Missing keys keep `base`'s values. Throws strata::Error naming the
// file.
Figures read_figures(const std::string& path, const Figures& base);
void write_figures(const std::string& path, const Figures& figures);
// $XDG_CACHE_HOME/strata/hardware.json, else $HOME/.cache/strata/hardware.json; "" without either.
std::string default_figures_path();

// Measures the CPU side here (simd/probe.h: read bandwidth and int8 peak with `threads`
// threads); leaves the GPU, PCIe and NVMe figures at `base`'s.
Figures probe_cpu_figures(int threads, const Figures& base);

// A placement's predicted speed. Times are per decode token, in milliseconds.
struct Prediction {
    double decode_tps = 0;
    double prefill_tps = 0;
    std::string decode_bottleneck;  // "CPU memory bandwidth", "GPU memory bandwidth", ...
    std::string prefill_bottleneck;
    double gpu_ms = 0;   // GPU reads: shared parts plus its routed experts
    double cpu_ms = 0;   // CPU reads: shared parts plus its routed experts (cache hits included)
    double nvme_ms = 0;  // expected cache misses read from NVMe
    double pcie_ms = 0;  // crossings: hidden state both ways and their latency
    double cache_hit_rate = 1;  // of NVMe-homed expert reads (1 when nothing is on NVMe)
    int64_t crossings = 0;      // PCIe crossings per token
};

}  // namespace strata::scheduler
