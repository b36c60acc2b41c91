// Split execution (issue 16): a forward pass whose GPU-placed weights are multiplied on a device
// gives the CPU-only logits bit for bit through the host-memory device, for every golden model
// (deepseek2, llama, qwen2) at several GPU budgets and for synthesized models of other shapes,
// with the expert cache under --ram-budget too; and a batch of independent sequences
// (Forward::run_batch) gives each row the logits of that token run alone.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "cuda/device.h"
#include "runtime/arch/forward.h"
#include "runtime/error.h"
#include "runtime/plan_model.h"
#include "runtime/session.h"
#include "scheduler/cost.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

// Figures under which the planner moves even a tiny model's tensors: no PCIe latency.
scheduler::Figures tiny_figures() {
    scheduler::Figures f = scheduler::published_figures();
    f.pcie_latency_us = 0;
    return f;
}

std::vector<int32_t> prompt(int64_t n, int64_t vocab, int64_t salt = 0) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int32_t>((i * 37 + 11 + salt) % vocab);
    return v;
}

// Logits of every prompt position, then of three decoded tokens (one pass each): prompts run
// in two batches so that cached positions are read too.
std::vector<float> logits_of(const Model& m, SessionOptions o) {
    const int64_t vocab = m.hparams().n_vocab;
    const std::vector<int32_t> ids = prompt(21, vocab);
    o.n_ctx = 32;
    o.n_batch = 13;
    Session s(m, o);
    std::vector<float> out;
    s.decode_all(ids, out);
    for (int i = 0; i < 3; ++i) {
        const int32_t id = static_cast<int32_t>((i * 5 + 3) % vocab);
        const std::span<const float> l = s.decode({&id, 1});
        out.insert(out.end(), l.begin(), l.end());
    }
    if (o.gpu.budget > 0) {
        EXPECT_NE(s.gpu_tier(), nullptr);
        if (s.gpu_tier() && s.gpu_tier()->weights().bytes > 0) {
            EXPECT_GT(s.gpu_tier()->device().products(), 0u) << "nothing ran on the device";
        }
    }
    return out;
}

uint64_t weight_bytes(const Model& m) {
    uint64_t b = 0;
    for (const auto& t : model_info(m).tensors) b += t.bytes;
    return b;
}

// The split at GPU budgets from a sliver to everything against the CPU alone; returns how many
// budgets put something on the device.
int expect_split_equals_cpu(const Model& m, SessionOptions o = {}) {
    const std::vector<float> cpu = logits_of(m, o);
    const uint64_t weights = weight_bytes(m);
    int placed = 0;
    for (const double share : {0.05, 0.2, 0.5, 0.8, 1.5}) {
        SCOPED_TRACE(share);
        SessionOptions so = o;
        so.gpu.budget = static_cast<uint64_t>(share * static_cast<double>(weights)) + 4096;
        so.gpu.device = "host";
        so.gpu.reserve = 0;
        so.gpu.figures = tiny_figures();
        const std::vector<float> split = logits_of(m, so);
        EXPECT_EQ(split.size(), cpu.size());
        EXPECT_EQ(std::memcmp(split.data(), cpu.data(), cpu.size() * sizeof(float)), 0)
            << "split logits differ from the CPU's";
        SessionOptions po;
        po.n_ctx = 32;
        po.gpu = so.gpu;
        const Session probe(m, po);
        placed += probe.gpu_tier()->weights().bytes > 0;
        EXPECT_LE(probe.gpu_tier()->device().used_bytes(), so.gpu.budget);
    }
    return placed;
}

TEST(SplitExecution, GoldenModelsGiveTheCpuLogitsAtEveryGpuBudget) {
    STRATA_REQUIRE_GOLDEN();
    int models = 0;
    for (const auto& entry : fs::directory_iterator(test::golden_dir() / "models")) {
        if (entry.path().extension() != ".gguf") continue;
        SCOPED_TRACE(entry.path().filename().string());
        const Model m = Model::load(gguf::File::open(entry.path().string()));
        EXPECT_GE(expect_split_equals_cpu(m), 3) << "fewer than 3 budgets placed anything";
        if (m.hparams().arch == Arch::DeepSeek2 && !m.hparams().mla_split)
            expect_split_equals_cpu(m, {.mla_legacy = MlaLegacy::PerHead});
        ++models;
    }
    EXPECT_GE(models, 3);
}

// Shapes the golden set lacks: F16 and Q4_K weights, q_lora, several dense leads, more experts,
// qwen2 biases; and routed experts through the RAM expert cache beside the GPU tier.
TEST(SplitExecution, SynthesizedModelsGiveTheCpuLogitsWithAndWithoutAnExpertCache) {
    test::TempDir dir;
    std::vector<test::TinySpec> specs(4);
    specs[0].arch = Arch::DeepSeek2;
    specs[0].type = quant::Type::Q4_K;
    specs[0].n_embd = 256;
    specs[0].q_lora = 64;
    specs[0].n_expert = 8;
    specs[0].n_layer = 3;
    specs[1].arch = Arch::DeepSeek2;
    specs[1].type = quant::Type::F16;
    specs[1].n_dense_lead = 2;
    specs[1].n_layer = 3;
    specs[1].legacy_kv_b = true;
    specs[2].arch = Arch::Qwen2;
    specs[2].type = quant::Type::Q8_0;
    specs[3].arch = Arch::Llama;
    specs[3].type = quant::Type::F16;
    specs[3].tied = true;
    for (size_t i = 0; i < specs.size(); ++i) {
        SCOPED_TRACE(i);
        specs[i].seed = 40 + i;
        const Model m = test::load_tiny_model(specs[i], dir / fmt::format("m{}.gguf", i));
        EXPECT_GE(expect_split_equals_cpu(m), 3);
        if (m.hparams().n_expert > 0) {
            // A cache of a few slots: experts not on the device come through it.
            const uint64_t budget = m.file().file_bytes() / 2 + (1u << 20);
            expect_split_equals_cpu(m, {.ram_budget = budget});
        }
    }
}

// Under --ram-budget beside a GPU tier holding some of the routed experts: the experts on the
// device never take a cache slot, neither when routed to (they are multiplied there) nor as a
// decoding step's read-ahead guess for the next layer.
TEST(SplitExecution, ExpertsOnTheDeviceNeverTakeACacheSlot) {
    test::TempDir dir;
    test::TinySpec spec;
    spec.arch = Arch::DeepSeek2;
    spec.seed = 47;
    spec.n_embd = 128;
    spec.n_layer = 4;
    spec.n_expert = 16;
    spec.n_expert_used = 4;
    const Model m = test::load_tiny_model(spec, dir / "moe.gguf");
    SessionOptions o;
    o.n_ctx = 64;
    o.ram_budget = m.file().file_bytes() / 2 + (24u << 20);  // the work buffers and a few slots
    o.reader.quiet = true;
    // A profile that makes half of the last layer's experts the hottest: the tier takes those
    // first, and they are what the layer before it guesses for the next one.
    std::string json = R"({"layers": [)";
    for (int64_t layer = 1; layer < spec.n_layer; ++layer) {
        json += fmt::format(R"({}{{"layer": {}, "counts": [)", layer > 1 ? ", " : "", layer);
        for (int64_t e = 0; e < spec.n_expert; ++e)
            json += fmt::format("{}{}", e > 0 ? ", " : "",
                                layer == spec.n_layer - 1 && e % 2 == 0 ? 1000 : 1);
        json += "]}";
    }
    json += "]}";
    o.gpu.usage_path = (dir / "usage.json").string();
    std::ofstream(o.gpu.usage_path) << json;
    uint64_t routed = 0;
    for (const gguf::Tensor& t : m.file().tensors())
        if (role_of(t.name) == Role::RoutedExperts) routed += t.nbytes;
    o.gpu.budget = weight_bytes(m) - routed + routed / 4;
    o.gpu.device = "host";
    o.gpu.reserve = 0;
    o.gpu.figures = tiny_figures();
    Session s(m, o);
    ASSERT_NE(s.gpu_tier(), nullptr);
    ASSERT_NE(s.expert_cache(), nullptr);
    const auto& slabs = s.gpu_tier()->weights().slabs;
    ASSERT_FALSE(slabs.empty()) << "the tier took no expert slab: the test tests nothing";
    const auto check = [&] {
        for (const auto& [key, buffer] : slabs) {
            const auto& [name, e] = key;
            int layer = -1;  // blk.N.ffn_*_exps.weight
            ASSERT_EQ(std::sscanf(name.c_str(), "blk.%d.", &layer), 1) << name;
            EXPECT_FALSE(s.expert_cache()->holds(layer, static_cast<int32_t>(e)))
                << name << " expert " << e << " is on the device and in a cache slot";
        }
    };
    std::vector<float> logits;
    s.decode_all(prompt(21, m.hparams().n_vocab), logits);
    check();
    for (int i = 0; i < 12; ++i) {
        const int32_t id = static_cast<int32_t>((i * 5 + 3) % m.hparams().n_vocab);
        s.decode({&id, 1});
        check();
    }
    EXPECT_GT(s.expert_cache()->stats().predicted, 0u)
        << "no decoding step guessed the next layer's experts: the test tests nothing";
}

TEST(SplitExecution, CudaWithoutAGpuAndUnknownDevicesAreClearErrors) {
    test::TempDir dir;
    const Model m = test::load_tiny_model({}, dir / "m.gguf");
    std::vector<const char*> devices = {"tpu"};
    if (cuda::devices().empty()) devices.push_back("cuda");  // else cuda_test.cpp
    for (const char* device : devices) {
        try {
            Session s(m, {.n_ctx = 8, .gpu = {.budget = 1 << 20, .device = device}});
            ADD_FAILURE() << device << " accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("--gpu"), std::string::npos) << e.what();
        }
    }
}

// run_batch against run() one row at a time, bitwise: sequences of different lengths (one
// empty), each in its own cache, four steps; optionally the batch through a GPU tier.
void expect_batch_equals_alone(const Model& m, MlaLegacy legacy, bool split) {
    const int64_t vocab = m.hparams().n_vocab;
    const std::vector<int64_t> lengths = {1, 3, 0, 12, 7};
    const auto k = lengths.size();
    std::unique_ptr<Forward> batched = make_forward(m, legacy), alone = make_forward(m, legacy);
    std::optional<GpuTier> tier;
    if (split) {
        const GpuOptions options{.budget = weight_bytes(m) / 2,
                                 .device = "host",
                                 .reserve = 0,
                                 .figures = tiny_figures()};
        tier.emplace(m, *batched, options, GpuTier::plan(m, options, 32));
    }
    std::vector<KvCache> a, b;
    std::vector<int64_t> pos(k);
    for (size_t i = 0; i < k; ++i) {
        a.emplace_back(batched->kv_layout(), 32);
        b.emplace_back(alone->kv_layout(), 32);
        const std::vector<int32_t> p = prompt(lengths[i], vocab, static_cast<int64_t>(i) * 3);
        if (!p.empty()) {
            batched->run(p, 0, a[i], false, nullptr);
            alone->run(p, 0, b[i], false, nullptr);
        }
        pos[i] = lengths[i];
    }
    std::vector<float> got(k * static_cast<size_t>(vocab)), want(static_cast<size_t>(vocab));
    for (int step = 0; step < 4; ++step) {
        std::vector<BatchRow> rows;
        for (size_t i = 0; i < k; ++i)
            rows.push_back({static_cast<int32_t>((step * 13 + i * 7 + 5) % vocab), pos[i], &a[i]});
        batched->run_batch(rows, got.data());
        for (size_t i = 0; i < k; ++i) {
            alone->run({&rows[i].token, 1}, pos[i], b[i], false, want.data());
            EXPECT_EQ(std::memcmp(got.data() + i * vocab, want.data(), want.size() * sizeof(float)),
                      0)
                << "step " << step << ", row " << i << " at position " << pos[i];
            ++pos[i];
        }
    }
    if (tier) {
        EXPECT_GT(tier->device().products(), 0u);
    }
}

TEST(RunBatch, EveryRowGetsTheLogitsOfItsTokenAloneOnGoldenModels) {
    STRATA_REQUIRE_GOLDEN();
    int models = 0;
    for (const auto& entry : fs::directory_iterator(test::golden_dir() / "models")) {
        if (entry.path().extension() != ".gguf") continue;
        SCOPED_TRACE(entry.path().filename().string());
        const Model m = Model::load(gguf::File::open(entry.path().string()));
        expect_batch_equals_alone(m, MlaLegacy::Compressed, false);
        if (m.hparams().arch == Arch::DeepSeek2 && !m.hparams().mla_split)
            expect_batch_equals_alone(m, MlaLegacy::PerHead, false);
        ++models;
    }
    EXPECT_GE(models, 3);
}

TEST(RunBatch, EveryRowGetsTheLogitsOfItsTokenAloneOnSynthesizedModels) {
    test::TempDir dir;
    std::vector<test::TinySpec> specs(5);
    specs[0].arch = Arch::DeepSeek2;  // F32: the order of float sums depends on the rows
    specs[0].n_expert = 8;
    specs[0].n_expert_used = 3;
    specs[1].arch = Arch::DeepSeek2;
    specs[1].type = quant::Type::Q4_K;
    specs[1].n_embd = 256;
    specs[1].q_lora = 32;
    specs[1].legacy_kv_b = true;
    specs[2].arch = Arch::DeepSeek2;
    specs[2].type = quant::Type::F16;
    specs[2].f32_kv_b = true;
    specs[3].arch = Arch::Qwen2;
    specs[3].type = quant::Type::BF16;
    specs[4].arch = Arch::Llama;
    specs[4].type = quant::Type::F16;
    specs[4].n_embd = 128;
    for (size_t i = 0; i < specs.size(); ++i) {
        SCOPED_TRACE(i);
        specs[i].seed = 70 + i;
        const Model m = test::load_tiny_model(specs[i], dir / fmt::format("m{}.gguf", i));
        expect_batch_equals_alone(m, MlaLegacy::Compressed, false);
        expect_batch_equals_alone(m, MlaLegacy::Compressed, true);
        if (specs[i].legacy_kv_b) expect_batch_equals_alone(m, MlaLegacy::PerHead, false);
    }
}

}  // namespace
}  // namespace strata
