// The placement planner: invariants over every synth preset and a grid of budgets (never over a
// budget, every tensor and slab placed exactly once, more budget never predicts slower, dense
// splits as described), the cost model against hand-computed times, routing profiles, errors.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/plan_model.h"
#include "scheduler/plan.h"
#include "synth/layout.h"
#include "synth/spec.h"
#include "test_util.h"

namespace strata {
namespace {

using scheduler::Part;
using scheduler::Tier;

constexpr uint64_t GiB = 1ull << 30;

scheduler::ModelInfo preset_info(std::string_view preset, Arch arch) {
    const synth::Spec spec = synth::make_spec(preset, arch);
    std::vector<TensorShape> shapes;
    for (const synth::TensorPlan& t : synth::plan_tensors(spec)) {
        TensorShape s{t.name, t.type, {1, 1, 1, 1}, t.bytes};
        for (size_t d = 0; d < t.ne.size(); ++d) s.ne[d] = t.ne[d];
        shapes.push_back(s);
    }
    return model_info(std::string(preset), spec.hp, shapes);
}

uint64_t weight_bytes(const scheduler::ModelInfo& m) {
    uint64_t b = 0;
    for (const auto& t : m.tensors) b += t.bytes;
    return b;
}

// Every tensor and slab is in exactly one tier, and the per-tier totals are their sum (counted
// here from the tensors, not from the planner's totals).
void expect_placed_once(const scheduler::ModelInfo& m, const scheduler::Placement& p) {
    ASSERT_EQ(p.tensors.size(), m.tensors.size());
    std::array<uint64_t, scheduler::kTierCount> bytes{};
    for (size_t i = 0; i < m.tensors.size(); ++i) {
        const auto& t = m.tensors[i];
        const auto& tp = p.tensors[i];
        if (t.part == Part::RoutedExperts) {
            ASSERT_EQ(static_cast<int64_t>(tp.slabs.size()), t.n_expert) << t.name;
            uint64_t sum = 0;
            for (size_t e = 0; e < tp.slabs.size(); ++e) {
                const uint64_t slab =
                    e + 1 < tp.slabs.size() ? t.bytes / tp.slabs.size() : t.bytes - sum;
                bytes[static_cast<size_t>(tp.slabs[e])] += slab;
                sum += slab;
            }
            EXPECT_EQ(sum, t.bytes);
        } else {
            EXPECT_TRUE(tp.slabs.empty()) << t.name;
            EXPECT_NE(tp.tier, Tier::Nvme) << t.name << ": only routed experts are NVMe-homed";
            bytes[static_cast<size_t>(tp.tier)] += t.bytes;
        }
    }
    bytes[static_cast<size_t>(Tier::Gpu)] += p.kv_gpu_bytes;
    bytes[static_cast<size_t>(Tier::Ram)] += p.kv_bytes - p.kv_gpu_bytes;
    EXPECT_EQ(bytes, p.bytes);
    EXPECT_EQ(std::accumulate(bytes.begin(), bytes.end(), uint64_t{0}),
              weight_bytes(m) + p.kv_bytes);
}

scheduler::Figures figures() {
    scheduler::Figures f = scheduler::published_figures();
    return f;
}

struct GridPoint {
    uint64_t gpu, ram;
    bool ok;
    scheduler::Placement p;
};

TEST(Plan, EveryPresetOverABudgetGrid) {
    const double gpu_share[] = {0, 0.03, 0.1, 0.25, 0.5, 0.8, 1.2, 3};
    const double ram_share[] = {0.05, 0.2, 0.4, 0.7, 1.0, 1.5};
    for (const synth::PresetInfo& preset : synth::presets()) {
        SCOPED_TRACE(fmt::format("{} {}", preset.name, arch_name(preset.arch)));
        const scheduler::ModelInfo m = preset_info(preset.name, preset.arch);
        const double w = static_cast<double>(weight_bytes(m));
        std::vector<std::vector<GridPoint>> grid;
        for (const double gs : gpu_share) {
            grid.emplace_back();
            for (const double rs : ram_share) {
                scheduler::Budgets b;
                b.gpu_bytes = static_cast<uint64_t>(gs * w);
                b.ram_bytes = static_cast<uint64_t>(rs * w);
                b.ctx = 2048;
                GridPoint g{b.gpu_bytes, b.ram_bytes, false, {}};
                try {
                    g.p = scheduler::plan(m, figures(), b, {});
                    g.ok = true;
                } catch (const Error& e) {
                    EXPECT_NE(std::string(e.what()).find("--"), std::string::npos) << e.what();
                }
                if (g.ok) {
                    SCOPED_TRACE(fmt::format("gpu {} ram {}", b.gpu_bytes, b.ram_bytes));
                    EXPECT_LE(g.p.gpu_used(), b.gpu_bytes);
                    EXPECT_LE(g.p.ram_used(), b.ram_bytes);
                    expect_placed_once(m, g.p);
                    EXPECT_GT(g.p.prediction.decode_tps, 0);
                    EXPECT_GT(g.p.prediction.prefill_tps, 0);
                    if (!m.moe()) {
                        EXPECT_EQ(g.p.bytes[static_cast<size_t>(Tier::Nvme)], 0u);
                    }
                }
                grid.back().push_back(std::move(g));
            }
        }
        // More GPU or more RAM: feasible stays feasible and never predicts slower.
        for (size_t i = 0; i < grid.size(); ++i)
            for (size_t j = 0; j < grid[i].size(); ++j) {
                const GridPoint& g = grid[i][j];
                if (!g.ok) continue;
                const double tps = g.p.prediction.decode_tps;
                for (const GridPoint* more : {i + 1 < grid.size() ? &grid[i + 1][j] : nullptr,
                                              j + 1 < grid[i].size() ? &grid[i][j + 1] : nullptr}) {
                    if (!more) continue;
                    SCOPED_TRACE(fmt::format("gpu {} ram {} -> gpu {} ram {}", g.gpu, g.ram,
                                             more->gpu, more->ram));
                    ASSERT_TRUE(more->ok);
                    EXPECT_GE(more->p.prediction.decode_tps, tps * (1 - 1e-9));
                }
            }
        // With everything fitting on the GPU (3x the weights), nothing is on NVMe and the plan
        // is at least as fast as everything (but the embedding table) on the GPU.
        const GridPoint& top = grid.back().back();
        ASSERT_TRUE(top.ok);
        EXPECT_EQ(top.p.bytes[static_cast<size_t>(Tier::Nvme)], 0u);
        scheduler::Placement all_gpu = top.p;
        for (size_t i = 0; i < m.tensors.size(); ++i) {
            auto& tp = all_gpu.tensors[i];
            tp.tier = m.tensors[i].part == Part::TokenEmbd ? Tier::Ram : Tier::Gpu;
            for (Tier& t : tp.slabs) t = Tier::Gpu;
        }
        all_gpu.cache_slots = 0;
        const auto u = scheduler::expert_usage(m, {});
        EXPECT_GE(top.p.prediction.decode_tps,
                  scheduler::predict(m, all_gpu, figures(), u).decode_tps * (1 - 1e-9));
    }
}

// Dense splits: whole layers put blocks [0, k) on the GPU and none after; attention-only puts
// every block's attention there and FFNs of blocks [0, k).
TEST(Plan, DenseSplitsAreWhatTheySay) {
    const scheduler::ModelInfo m = preset_info("r1-distill-llama-70b", Arch::Llama);
    for (const uint64_t gpu : {8 * GiB, 16 * GiB, 24 * GiB, 32 * GiB}) {
        scheduler::Budgets b{gpu, 64 * GiB, -1, 4096};
        const scheduler::Placement p = scheduler::plan(m, figures(), b, {});
        SCOPED_TRACE(
            fmt::format("gpu {} GiB: {} {}", gpu / GiB, split_name(p.split), p.gpu_layers));
        ASSERT_NE(p.split, scheduler::DenseSplit::None);
        for (size_t i = 0; i < m.tensors.size(); ++i) {
            const auto& t = m.tensors[i];
            if (t.layer < 0) continue;
            const bool attention = t.part == Part::Attention || t.part == Part::Norm;
            const bool want = p.split == scheduler::DenseSplit::WholeLayers
                                  ? t.layer < p.gpu_layers
                                  : attention || t.layer < p.gpu_layers;
            EXPECT_EQ(p.tensors[i].tier == Tier::Gpu, want) << t.name;
        }
    }
}

// The acceptance plan: R1-Distill-Llama-70B Q4_K_M on a 24 GB card with 64 GB of RAM fits, with
// the GPU full and the rest in RAM.
TEST(Plan, Llama70bOn24GFitsWithTheRestInRam) {
    const scheduler::ModelInfo m = preset_info("r1-distill-llama-70b", Arch::Llama);
    const scheduler::Placement p =
        scheduler::plan(m, figures(), {24 * GiB, 64 * GiB, -1, 4096}, {});
    EXPECT_LE(p.gpu_used(), 24 * GiB);
    EXPECT_GT(p.gpu_used(), 20 * GiB);
    EXPECT_LE(p.ram_used(), 64 * GiB);
    EXPECT_EQ(p.bytes[static_cast<size_t>(Tier::Nvme)], 0u);
}

// R1 with all experts in RAM (512G) predicts faster than with 128G (NVMe behind the cache), and
// the 128G plan's bottleneck is NVMe.
TEST(Plan, R1RamBudgetsOrderAndBottlenecks) {
    const scheduler::ModelInfo m = preset_info("r1-671b", Arch::DeepSeek2);
    const auto big = scheduler::plan(m, figures(), {24 * GiB, 512 * GiB, -1, 4096}, {});
    const auto small = scheduler::plan(m, figures(), {24 * GiB, 128 * GiB, -1, 4096}, {});
    EXPECT_EQ(big.bytes[static_cast<size_t>(Tier::Nvme)], 0u);
    EXPECT_GT(small.bytes[static_cast<size_t>(Tier::Nvme)], 0u);
    EXPECT_GT(small.cache_slots, 0);
    EXPECT_GT(big.prediction.decode_tps, small.prediction.decode_tps);
    EXPECT_EQ(big.prediction.decode_bottleneck, "CPU memory bandwidth");
    EXPECT_EQ(small.prediction.decode_bottleneck, "NVMe reads (RAM cache misses)");
    // The attention of every layer and the KV cache are on the GPU.
    EXPECT_EQ(big.kv_tier, Tier::Gpu);
    for (size_t i = 0; i < m.tensors.size(); ++i)
        if (m.tensors[i].part == Part::Attention) {
            EXPECT_EQ(big.tensors[i].tier, Tier::Gpu);
        }
}

// A hand-sized model: one attention tensor of 1 GB, one routed stack of 4 experts of 0.25 GB.
scheduler::ModelInfo toy_moe() {
    scheduler::ModelInfo m;
    m.name = "toy";
    m.arch = "deepseek2";
    m.n_layer = 1;
    m.n_embd = 1024;
    m.n_expert = 4;
    m.n_expert_used = 1;
    m.tensors.push_back(
        {"blk.0.attn_q.weight", "q8_0", 1'000'000'000, 1'000'000'000, Part::Attention, 0, 0});
    m.tensors.push_back({"blk.0.ffn_down_exps.weight", "q8_0", 1'000'000'000, 1'000'000'000,
                         Part::RoutedExperts, 0, 4});
    return m;
}

// All on the CPU: a token reads the attention (1 GB) and one expert (0.25 GB) at
// 100 GB/s × 0.5 = 50 GB/s: 25 ms, 40 tok/s. No GPU: no crossings.
TEST(PlanCost, MatchesHandComputedCpuOnlyDecode) {
    scheduler::Figures f = figures();
    f.ram_gbs = 100;
    f.cpu_efficiency = 0.5;
    const auto p = scheduler::plan(toy_moe(), f, {0, 10 * GiB, -1, 16}, {});
    EXPECT_EQ(p.prediction.crossings, 0);
    EXPECT_NEAR(p.prediction.decode_tps, 40.0, 1e-9);
    EXPECT_EQ(p.prediction.decode_bottleneck, "CPU memory bandwidth");
}

// The profile says expert 2 takes every token: with room for the attention and one expert on
// the GPU, that expert is the one placed there.
TEST(PlanUsage, HottestExpertGoesToTheGpu) {
    scheduler::RoutingProfile prof;
    prof.layers.push_back({0, {1, 0, 97, 2}});
    scheduler::Budgets b{1'250'000'000 + 100, 10 * GiB, 0, 16};
    const auto p = scheduler::plan(toy_moe(), figures(), b, prof);
    EXPECT_EQ(p.tensors[0].tier, Tier::Gpu);
    const std::vector<Tier> want{Tier::Ram, Tier::Ram, Tier::Gpu, Tier::Ram};
    EXPECT_EQ(p.tensors[1].slabs, want);
    // Uniform usage predicts slower: the GPU's expert serves a quarter of the tokens, not 97%.
    const auto uniform = scheduler::plan(toy_moe(), figures(), b, {});
    EXPECT_GT(p.prediction.decode_tps, uniform.prediction.decode_tps);
}

TEST(PlanUsage, ProfileOfTheWrongShapeIsRefused) {
    scheduler::RoutingProfile prof;
    prof.layers.push_back({0, {1, 2, 3}});
    EXPECT_THROW(scheduler::plan(toy_moe(), figures(), {0, 10 * GiB, -1, 16}, prof), Error);
    prof.layers[0] = {5, {1, 2, 3, 4}};
    EXPECT_THROW(scheduler::plan(toy_moe(), figures(), {0, 10 * GiB, -1, 16}, prof), Error);
}

TEST(PlanUsage, ProfileFileRoundTripsAndBadFilesNameThemselves) {
    test::TempDir dir;
    // Layers 0-2 dense (no counters), 3 and 4 routed.
    const scheduler::RoutingProfile prof =
        scheduler::routing_profile_from_counts({{}, {}, {}, {5, 0, 7}, {0, 0, 1}});
    const std::string path = (dir / "profile.json").string();
    scheduler::write_routing_profile(path, prof);
    const auto back = scheduler::read_routing_profile(path);
    ASSERT_EQ(back.layers.size(), 2u);
    EXPECT_EQ(back.layers[0].layer, 3);
    EXPECT_EQ(back.layers[0].counts, (std::vector<uint64_t>{5, 0, 7}));
    EXPECT_EQ(back.layers[1].counts, (std::vector<uint64_t>{0, 0, 1}));
    for (const char* bad : {"[1,2]", "{\"layers\": [{\"layer\": 1}]}",
                            "{\"layers\": [{\"layer\": 1, \"counts\": [-1]}]}", "{\"layers\": ["}) {
        {
            std::ofstream out(path, std::ios::trunc);
            out << bad;
        }
        try {
            scheduler::read_routing_profile(path);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        }
    }
}

TEST(Plan, ResidentPartTooBigNamesTheRamBudget) {
    const scheduler::ModelInfo m = preset_info("r1-671b", Arch::DeepSeek2);
    try {
        scheduler::plan(m, figures(), {0, 4 * GiB, -1, 4096}, {});
        ADD_FAILURE() << "planned R1 in 4 GiB";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--ram"), std::string::npos) << e.what();
    }
}

TEST(PlanFigures, CacheFileRoundTrips) {
    test::TempDir dir;
    scheduler::Figures f = figures();
    f.ram_gbs = 123.5;
    f.nvme_gbs = 3.25;
    const std::string path = (dir / "sub" / "hardware.json").string();
    scheduler::write_figures(path, f);
    const auto back = scheduler::read_figures(path, scheduler::Figures{});
    EXPECT_EQ(back.ram_gbs, 123.5);
    EXPECT_EQ(back.nvme_gbs, 3.25);
    EXPECT_EQ(back.gpu_gbs, f.gpu_gbs);
}

TEST(PlanCli, PresetPlanPrintsTiersPredictionAndReproduction) {
    const auto r =
        test::run_strata("plan --preset r1-distill-llama-70b --gpu 24G --ram 64G --paper --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_LE(j["tiers"]["GPU"]["used_bytes"].get<uint64_t>(), 24 * GiB);
    EXPECT_EQ(j["tiers"]["NVMe"]["bytes"].get<uint64_t>(), 0u);
    EXPECT_GT(j["prediction"]["decode_tps"].get<double>(), 0);
    // The reproduction command gives the same plan.
    std::string again = j["reproduce"].get<std::string>();
    again = again.substr(std::string("strata ").size()) + " --json";
    const auto r2 = test::run_strata(again);
    ASSERT_EQ(r2.status, 0) << r2.err;
    EXPECT_EQ(nlohmann::json::parse(r2.out)["prediction"], j["prediction"]);
    const auto bad = test::run_strata("plan --preset r1-671b --gpu 24X --paper");
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("--gpu"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace strata
