// Kernel speed against the machine's limits (simd/probe.h):
//  - TileMatvec: one activation row times a weight matrix of 4× the last-level cache (capped at
//    1 GiB, see default_probe_bytes), so every pass streams the weights from memory; reports
//    GB/s of weights, to compare with ReadProbe. VecDotMatvec is the same product through the
//    1×1 vec_dot kernels (what matmul ran before the tiles; STRATA_ISA=avx2's path).
//  - TileBatch: n_a = 4, 8, 32 activation rows times a cache-resident matrix (4096 rows), in
//    GOP/s (a multiply and an add per weight element and activation row), to compare with
//    Int8Probe.
//  - QuantizeActivation: float rows to Q8_K / Q8_0, GB/s of floats read.
//  - AttentionScores / AttentionSums: attention's AVX-512 float products on one core, four rows
//    by four vectors of n elements (scores: ggml_vec_dot_f32's order; sums: prefill's weighted
//    sums in tinyBLAS's order), in GFMA/s; the rows stay in cache, as in a decoding step.
// Threads: the second argument, OpenMP over chunks of 16 weight rows as matmul() splits them.
// Machine load matters (other builds share the cores): repeat and take medians, e.g.
//   build/bench/strata_bench --benchmark_filter='Tile|Probe' --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "simd/avx512/kernels.h"
#include "simd/dispatch.h"
#include "simd/probe.h"
#include "simd/quant.h"
#include "simd/repack.h"

namespace {

using strata::quant::Type;
namespace dispatch = strata::dispatch;
namespace quant = strata::quant;

constexpr int64_t kInputs = 2048;  // n_embd of the bench model (strata synth --preset bench)
constexpr int64_t kChunkRows = 16;
constexpr int64_t kBatchRows = 4096;

// A weight matrix of n_out rows of kInputs elements: 64 distinct quantized rows of N(0, 0.02),
// repeated (the kernels' speed does not depend on the values, only on their being sane floats).
struct Weights {
    Type type = Type::F32;
    int64_t n_out = 0;
    size_t row_bytes = 0;
    std::unique_ptr<uint8_t[]> data;  // (n_out, row_bytes)
    bool interleaved = false;         // regrouped for tile_x16 (simd/repack.h)
};

// The rows as they are in the file, or interleaved in place.
void set_interleaved(Weights& w, bool interleaved) {
    if (w.interleaved == interleaved) return;
    if (interleaved)
        strata::simd::interleave_rows(w.type, w.data.get(), kInputs, w.n_out);
    else
        strata::simd::deinterleave_rows(w.type, w.data.get(), kInputs, w.n_out);
    w.interleaved = interleaved;
}

Weights make_weights(Type type, int64_t n_out) {
    Weights w;
    w.type = type;
    w.n_out = n_out;
    w.row_bytes = quant::row_bytes(type, kInputs);
    w.data.reset(new uint8_t[w.row_bytes * static_cast<size_t>(n_out)]);
    constexpr int64_t kDistinct = 64;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> f(kInputs);
    std::vector<uint8_t> rows(w.row_bytes * kDistinct);
    for (int64_t r = 0; r < kDistinct; ++r) {
        for (float& v : f) v = normal(rng);
        quant::quantize_row(type, f.data(), rows.data() + static_cast<size_t>(r) * w.row_bytes,
                            kInputs);
    }
    for (int64_t r = 0; r < n_out; ++r)
        std::memcpy(w.data.get() + static_cast<size_t>(r) * w.row_bytes,
                    rows.data() + static_cast<size_t>(r % kDistinct) * w.row_bytes, w.row_bytes);
    return w;
}

// One big matrix at a time (they are up to 1 GiB each); a multiple of 16 rows.
const Weights& big_weights(Type type, bool interleaved = false) {
    static Weights cached;
    if (cached.type != type || !cached.data) {
        cached = Weights{};
        const size_t row = quant::row_bytes(type, kInputs);
        cached = make_weights(
            type, static_cast<int64_t>(strata::simd::default_probe_bytes() / row) / 16 * 16);
    }
    set_interleaved(cached, interleaved);
    return cached;
}

std::vector<uint8_t> activations(Type weight_type, int64_t n_rows) {
    const Type partner = quant::traits(weight_type).partner;
    const size_t row = quant::row_bytes(partner, kInputs);
    std::vector<uint8_t> out(row * static_cast<size_t>(n_rows));
    std::mt19937 rng(2);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> f(kInputs);
    for (int64_t t = 0; t < n_rows; ++t) {
        for (float& v : f) v = normal(rng);
        quant::traits(partner).quantize_activation(
            f.data(), out.data() + static_cast<size_t>(t) * row, kInputs);
    }
    return out;
}

// y (n_a, n_out) = tile over all rows, chunks of 16 weight rows split over `threads`.
void run_tiles(dispatch::TileFn tile, const Weights& w, const std::vector<uint8_t>& a, int64_t n_a,
               std::vector<float>& y, int threads) {
    const size_t a_stride = a.size() / static_cast<size_t>(n_a);
    const int64_t n_chunks = (w.n_out + kChunkRows - 1) / kChunkRows;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < n_chunks; ++c) {
        const int64_t r0 = c * kChunkRows;
        tile(kInputs, w.data.get() + static_cast<size_t>(r0) * w.row_bytes, w.row_bytes,
             std::min(kChunkRows, w.n_out - r0), a.data(), a_stride, n_a, y.data() + r0, w.n_out);
    }
}

template <Type kType>
void TileMatvec(benchmark::State& state) {
    const dispatch::TypeKernels& k = dispatch::kernels()[kType];
    if (k.tile == nullptr) {
        state.SkipWithError("no tile kernel for this type on this CPU");
        return;
    }
    const int threads = static_cast<int>(state.range(0));
    const Weights& w = big_weights(kType);
    const std::vector<uint8_t> a = activations(kType, 1);
    std::vector<float> y(static_cast<size_t>(w.n_out));
    for (auto _ : state) {
        run_tiles(k.tile, w, a, 1, y, threads);
        benchmark::DoNotOptimize(y.data());
    }
    const double bytes = static_cast<double>(w.row_bytes) * static_cast<double>(w.n_out);
    state.counters["GB/s"] =
        benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["MiB"] = bytes / (1 << 20);
}

// The same over the weights interleaved sixteen rows at a time (what a model's Q4_K, Q6_K,
// Q8_0, Q5_0 and Q4_0 matrices become at load on CPUs with the interleaved tile).
template <Type kType>
void TileMatvecInterleaved(benchmark::State& state) {
    const dispatch::TypeKernels& k = dispatch::kernels()[kType];
    if (k.tile_x16 == nullptr) {
        state.SkipWithError("no interleaved tile for this type on this CPU");
        return;
    }
    const int threads = static_cast<int>(state.range(0));
    const Weights& w = big_weights(kType, /*interleaved=*/true);
    const std::vector<uint8_t> a = activations(kType, 1);
    std::vector<float> y(static_cast<size_t>(w.n_out));
    for (auto _ : state) {
        run_tiles(k.tile_x16, w, a, 1, y, threads);
        benchmark::DoNotOptimize(y.data());
    }
    const double bytes = static_cast<double>(w.row_bytes) * static_cast<double>(w.n_out);
    state.counters["GB/s"] =
        benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["MiB"] = bytes / (1 << 20);
}

// Regrouping rows in place into the interleaved layout (what loading a model costs, and an
// expert cache slot that a batch multiplies): GB/s of matrix bytes. The way back, between
// iterations, is not timed.
template <Type kType>
void Interleave(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    Weights& w = const_cast<Weights&>(big_weights(kType));
    const auto each_thread = [&](bool back) {
#pragma omp parallel num_threads(threads)
        {
            // Each thread its own share of whole 16-row groups.
            const int64_t groups = w.n_out / 16, n = omp_get_num_threads();
            const int64_t k = omp_get_thread_num();
            const int64_t g0 = groups * k / n, g1 = groups * (k + 1) / n;
            uint8_t* p = w.data.get() + static_cast<size_t>(g0 * 16) * w.row_bytes;
            if (back) {
                strata::simd::deinterleave_rows(kType, p, kInputs, (g1 - g0) * 16);
            } else {
                strata::simd::interleave_rows(kType, p, kInputs, (g1 - g0) * 16);
            }
        }
    };
    for (auto _ : state) {
        each_thread(false);
        state.PauseTiming();
        each_thread(true);
        state.ResumeTiming();
    }
    const double bytes = static_cast<double>(w.row_bytes) * static_cast<double>(w.n_out);
    state.counters["GB/s"] =
        benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

template <Type kType>
void VecDotMatvec(benchmark::State& state) {
    const quant::VecDotFn dot = dispatch::kernels()[kType].vec_dot;
    const int threads = static_cast<int>(state.range(0));
    const Weights& w = big_weights(kType);
    const std::vector<uint8_t> a = activations(kType, 1);
    std::vector<float> y(static_cast<size_t>(w.n_out));
    for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t r = 0; r < w.n_out; ++r)
            y[static_cast<size_t>(r)] =
                dot(kInputs, w.data.get() + static_cast<size_t>(r) * w.row_bytes, a.data());
        benchmark::DoNotOptimize(y.data());
    }
    const double bytes = static_cast<double>(w.row_bytes) * static_cast<double>(w.n_out);
    state.counters["GB/s"] =
        benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

template <Type kType>
void TileBatch(benchmark::State& state) {
    const dispatch::TypeKernels& k = dispatch::kernels()[kType];
    if (k.tile == nullptr) {
        state.SkipWithError("no tile kernel for this type on this CPU");
        return;
    }
    const int64_t n_a = state.range(0);
    const int threads = static_cast<int>(state.range(1));
    static const Weights w = make_weights(kType, kBatchRows);
    const std::vector<uint8_t> a = activations(kType, n_a);
    std::vector<float> y(static_cast<size_t>(w.n_out * n_a));
    for (auto _ : state) {
        run_tiles(k.tile, w, a, n_a, y, threads);
        benchmark::DoNotOptimize(y.data());
    }
    const double ops = 2.0 * kInputs * static_cast<double>(w.n_out) * static_cast<double>(n_a);
    state.counters["GOP/s"] =
        benchmark::Counter(ops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

template <Type kType>
void TileBatchInterleaved(benchmark::State& state) {
    const dispatch::TypeKernels& k = dispatch::kernels()[kType];
    if (k.tile_x16 == nullptr) {
        state.SkipWithError("no interleaved tile for this type on this CPU");
        return;
    }
    const int64_t n_a = state.range(0);
    const int threads = static_cast<int>(state.range(1));
    static Weights w = make_weights(kType, kBatchRows);
    set_interleaved(w, true);
    const std::vector<uint8_t> a = activations(kType, n_a);
    std::vector<float> y(static_cast<size_t>(w.n_out * n_a));
    for (auto _ : state) {
        run_tiles(k.tile_x16, w, a, n_a, y, threads);
        benchmark::DoNotOptimize(y.data());
    }
    const double ops = 2.0 * kInputs * static_cast<double>(w.n_out) * static_cast<double>(n_a);
    state.counters["GOP/s"] =
        benchmark::Counter(ops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

template <Type kPartner>
void QuantizeActivation(benchmark::State& state) {
    const bool reference = state.range(0) == 0;
    const quant::QuantizeFn convert = reference ? quant::traits(kPartner).quantize_activation
                                                : dispatch::kernels()[kPartner].quantize_activation;
    constexpr int64_t kRows = 64;
    std::vector<float> x(static_cast<size_t>(kRows * kInputs));
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : x) v = normal(rng);
    std::vector<uint8_t> out(quant::row_bytes(kPartner, kInputs) * kRows);
    for (auto _ : state) {
        for (int64_t t = 0; t < kRows; ++t)
            convert(x.data() + t * kInputs,
                    out.data() + static_cast<size_t>(t) * quant::row_bytes(kPartner, kInputs),
                    kInputs);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetLabel(reference ? "scalar reference" : "dispatched");
    state.counters["GB/s"] = benchmark::Counter(static_cast<double>(x.size() * sizeof(float)) / 1e9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

// The probes as benchmarks, so that one run reports kernels and limits side by side.
void ReadProbe(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    strata::simd::ReadProbe p;
    for (auto _ : state)
        p = strata::simd::probe_read_bandwidth(threads, strata::simd::default_probe_bytes(), 3);
    state.counters["GB/s"] = p.gb_per_s;
    state.SetLabel(p.kernel);
}

void Int8Probe(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    strata::simd::Int8Probe p;
    for (auto _ : state) p = strata::simd::probe_int8_peak(threads);
    state.counters["GOP/s"] = p.gop_per_s;
    state.SetLabel(p.kernel);
}

// Four rows and four vectors of n normal floats; `product` computes the sixteen products.
template <class Product>
void attention_products(benchmark::State& state, Product&& product) {
    if (dispatch::kernels()[Type::F32].vec_dot_isa < dispatch::Isa::avx512) {
        state.SkipWithError("attention's AVX-512 products need AVX-512 (F/BW/VL/DQ/VNNI)");
        return;
    }
    const int64_t n = state.range(0);
    std::mt19937 rng(6);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> xs(static_cast<size_t>(4 * n)), ys(xs.size());
    for (float& v : xs) v = normal(rng);
    for (float& v : ys) v = normal(rng);
    const float* x[4];
    const float* y[4];
    for (int r = 0; r < 4; ++r) {
        x[r] = xs.data() + r * n;
        y[r] = ys.data() + r * n;
    }
    float out[16];
    for (auto _ : state) {
        product(x, y, n, out);
        benchmark::DoNotOptimize(out);
    }
    state.counters["GFMA/s"] = benchmark::Counter(16.0 * static_cast<double>(n) / 1e9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

void AttentionScores(benchmark::State& state) {
    attention_products(state,
                       [](const float* const* x, const float* const* y, int64_t n, float* out) {
                           quant::avx512::vec_dot_f32_prefix_4x4(x, y, n, n, out);
                       });
}

void AttentionSums(benchmark::State& state) {
    attention_products(state, [](const float* const* x, const float* const* y, int64_t n,
                                 float* out) { quant::avx512::dot_f32_gemm_4x4(x, y, n, out); });
}

void thread_args(benchmark::internal::Benchmark* b) {
    b->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
}

void batch_args(benchmark::internal::Benchmark* b) {
    for (int64_t n_a : {4, 8, 32})
        for (int64_t threads : {1, 2}) b->Args({n_a, threads});
    b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(ReadProbe)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(Int8Probe)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(TileMatvec<Type::Q4_K>)->Apply(thread_args);
BENCHMARK(TileMatvecInterleaved<Type::Q4_K>)->Apply(thread_args);
BENCHMARK(TileMatvecInterleaved<Type::Q6_K>)->Apply(thread_args);
BENCHMARK(VecDotMatvec<Type::Q4_K>)->Apply(thread_args);
BENCHMARK(Interleave<Type::Q4_K>)->Apply(thread_args);
BENCHMARK(Interleave<Type::Q6_K>)->Apply(thread_args);
BENCHMARK(Interleave<Type::Q8_0>)->Apply(thread_args);
BENCHMARK(Interleave<Type::Q5_0>)->Apply(thread_args);
BENCHMARK(TileMatvec<Type::Q6_K>)->Apply(thread_args);
BENCHMARK(VecDotMatvec<Type::Q6_K>)->Apply(thread_args);
BENCHMARK(TileMatvec<Type::Q8_0>)->Apply(thread_args);
BENCHMARK(TileMatvecInterleaved<Type::Q8_0>)->Apply(thread_args);
BENCHMARK(VecDotMatvec<Type::Q8_0>)->Apply(thread_args);
BENCHMARK(TileMatvec<Type::Q5_K>)->Apply(thread_args);
BENCHMARK(TileMatvec<Type::Q4_0>)->Apply(thread_args);
BENCHMARK(TileMatvecInterleaved<Type::Q4_0>)->Apply(thread_args);
BENCHMARK(TileMatvec<Type::Q5_0>)->Apply(thread_args);
BENCHMARK(TileMatvecInterleaved<Type::Q5_0>)->Apply(thread_args);
BENCHMARK(TileBatch<Type::Q4_K>)->Apply(batch_args);
BENCHMARK(TileBatchInterleaved<Type::Q4_K>)->Apply(batch_args);
BENCHMARK(TileBatchInterleaved<Type::Q6_K>)->Apply(batch_args);
BENCHMARK(TileBatch<Type::Q6_K>)->Apply(batch_args);
BENCHMARK(TileBatch<Type::Q8_0>)->Apply(batch_args);
BENCHMARK(TileBatchInterleaved<Type::Q8_0>)->Apply(batch_args);
BENCHMARK(QuantizeActivation<Type::Q8_K>)->Arg(0)->Arg(1);
BENCHMARK(QuantizeActivation<Type::Q8_0>)->Arg(0)->Arg(1);
BENCHMARK(AttentionScores)->Arg(80)->Arg(192)->Arg(576)->Arg(1024)->Arg(4096);
BENCHMARK(AttentionSums)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);

}  // namespace
