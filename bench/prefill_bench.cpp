// Prefill products: the AVX-512 VNNI tiles on Q4_K weights against oneDNN's matmul (u8·s8 → f32
// and bf16 · bf16 → f32), on shapes of the bench model (strata synth --arch deepseek2 --preset
// bench: n_embd 2048, expert FFN 1536, dense FFN 8192, q_lora 768, kv_lora + rope 576) with a
// 512-token prompt (48 rows: one expert's share of 512 tokens × 6 of 64 experts). GOP/s counts
// a multiply and an add per weight element and activation row. oneDNN gets its weights in the
// layout it prefers (reordered once, untimed) and runs on the bench's OpenMP threads.
//   build/bench/strata_bench --benchmark_filter=Prefill
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <random>
#include <vector>

#include "simd/dispatch.h"
#include "simd/quant.h"

#if STRATA_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using strata::quant::Type;
namespace quant = strata::quant;

double gops(int64_t m, int64_t k, int64_t n) {
    return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) / 1e9;
}

// (M activation rows, K inputs, N outputs).
void shapes(benchmark::internal::Benchmark* b) {
    for (auto [m, k, n] : {std::array<int64_t, 3>{512, 2048, 1536},
                           {48, 2048, 1536},
                           {512, 1536, 2048},
                           {512, 2048, 8192},
                           {512, 2048, 768},
                           {512, 2048, 576}})
        for (int64_t threads : {1, 2}) b->Args({m, k, n, threads});
    b->UseRealTime()->Unit(benchmark::kMillisecond);
}

// The tile path as simd/matmul.cpp runs it: 16 weight rows × 64 activation rows per call.
void PrefillTileQ4K(benchmark::State& state) {
    const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
    const int threads = static_cast<int>(state.range(3));
    const strata::dispatch::TileFn tile = strata::dispatch::kernels()[Type::Q4_K].tile;
    if (tile == nullptr) {
        state.SkipWithError("no Q4_K tile kernel on this CPU");
        return;
    }
    std::mt19937 rng(4);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t w_row = quant::row_bytes(Type::Q4_K, k), a_row = quant::row_bytes(Type::Q8_K, k);
    std::vector<uint8_t> w(w_row * static_cast<size_t>(n)), a(a_row * static_cast<size_t>(m));
    std::vector<float> f(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
        for (float& v : f) v = 0.02f * normal(rng);
        quant::quantize_row(Type::Q4_K, f.data(), w.data() + static_cast<size_t>(r) * w_row, k);
    }
    for (int64_t t = 0; t < m; ++t) {
        for (float& v : f) v = normal(rng);
        quant::quantize_row(Type::Q8_K, f.data(), a.data() + static_cast<size_t>(t) * a_row, k);
    }
    std::vector<float> y(static_cast<size_t>(m * n));
    constexpr int64_t kRows = 16, kActs = 64;
    for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t c = 0; c < (n + kRows - 1) / kRows; ++c) {
            const int64_t r0 = c * kRows;
            for (int64_t t0 = 0; t0 < m; t0 += kActs)
                tile(k, w.data() + static_cast<size_t>(r0) * w_row, w_row, std::min(kRows, n - r0),
                     a.data() + static_cast<size_t>(t0) * a_row, a_row, std::min(kActs, m - t0),
                     y.data() + t0 * n + r0, n);
        }
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["GOP/s"] =
        benchmark::Counter(gops(m, k, n), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(PrefillTileQ4K)->Apply(shapes);

#if STRATA_HAVE_DNNL
// oneDNN matmul src (M, K) × weights (K, N) → f32 (M, N); `src_type`/`wei_type` u8/s8 or
// bf16/bf16. Weights reordered into the primitive's preferred layout before timing.
void run_dnnl(benchmark::State& state, dnnl::memory::data_type src_type,
              dnnl::memory::data_type wei_type) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
    const int threads = static_cast<int>(state.range(3));
    omp_set_num_threads(threads);  // bench process only: oneDNN takes OpenMP's team size
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream s(eng);
    const dnnl::memory::desc src_md({m, k}, src_type, tag::ab);
    const dnnl::memory::desc wei_any({k, n}, wei_type, tag::any);
    const dnnl::memory::desc dst_md({m, n}, dt::f32, tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_any, dst_md), eng);
    dnnl::memory src(src_md, eng), wei_plain({{k, n}, wei_type, tag::ab}, eng),
        wei(pd.weights_desc(), eng), dst(dst_md, eng);
    std::mt19937 rng(5);
    auto fill = [&](dnnl::memory& mem) {
        auto* p = static_cast<uint8_t*>(mem.get_data_handle());
        const size_t bytes = mem.get_desc().get_size();
        for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(rng() & 0x3f);
    };
    fill(src);
    fill(wei_plain);
    dnnl::reorder(wei_plain, wei).execute(s, wei_plain, wei);
    const dnnl::matmul mm(pd);
    for (auto _ : state) {
        mm.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
        s.wait();
    }
    state.SetLabel(pd.impl_info_str());
    state.counters["GOP/s"] =
        benchmark::Counter(gops(m, k, n), benchmark::Counter::kIsIterationInvariantRate);
}

void PrefillDnnlU8S8(benchmark::State& state) {
    run_dnnl(state, dnnl::memory::data_type::u8, dnnl::memory::data_type::s8);
}
void PrefillDnnlBf16(benchmark::State& state) {
    run_dnnl(state, dnnl::memory::data_type::bf16, dnnl::memory::data_type::bf16);
}
BENCHMARK(PrefillDnnlU8S8)->Apply(shapes);
BENCHMARK(PrefillDnnlBf16)->Apply(shapes);
#endif

}  // namespace
