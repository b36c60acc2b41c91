// The placement planner (scheduler/plan.h).
#include "scheduler/plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "runtime/error.h"

namespace strata::scheduler {

std::string_view part_name(Part part) {
    switch (part) {
        case Part::Attention:
            return "attention";
        case Part::Norm:
            return "norms";
        case Part::Router:
            return "router";
        case Part::SharedExperts:
            return "shared experts";
        case Part::DenseFfn:
            return "dense FFN";
        case Part::Output:
            return "output head";
        case Part::TokenEmbd:
            return "token embeddings";
        case Part::RoutedExperts:
            return "routed experts";
        case Part::Other:
            return "other";
    }
    return "?";
}

std::string_view tier_name(Tier tier) {
    switch (tier) {
        case Tier::Gpu:
            return "GPU";
        case Tier::Ram:
            return "RAM";
        case Tier::Nvme:
            return "NVMe";
    }
    return "?";
}

std::string_view split_name(DenseSplit split) {
    switch (split) {
        case DenseSplit::None:
            return "none";
        case DenseSplit::WholeLayers:
            return "whole layers";
        case DenseSplit::AttentionOnly:
            return "attention-only";
    }
    return "?";
}

uint64_t Placement::gpu_used() const {
    const uint64_t b = bytes[static_cast<size_t>(Tier::Gpu)];
    return b > 0 ? b + gpu_reserve : 0;
}

uint64_t Placement::ram_used() const {
    return bytes[static_cast<size_t>(Tier::Ram)] + ram_cache_bytes;
}

std::vector<std::vector<double>> expert_usage(const ModelInfo& model, const RoutingProfile& usage) {
    std::vector<std::vector<double>> u(static_cast<size_t>(model.n_layer));
    std::vector<bool> routed(static_cast<size_t>(model.n_layer), false);
    for (const TensorInfo& t : model.tensors)
        if (t.part == Part::RoutedExperts && t.layer >= 0 && t.layer < model.n_layer)
            routed[static_cast<size_t>(t.layer)] = true;
    const double used = static_cast<double>(model.n_expert_used);
    for (int64_t l = 0; l < model.n_layer; ++l)
        if (routed[static_cast<size_t>(l)])
            u[static_cast<size_t>(l)].assign(static_cast<size_t>(model.n_expert),
                                             used / static_cast<double>(model.n_expert));
    for (const LayerCounts& lc : usage.layers) {
        if (lc.layer < 0 || lc.layer >= model.n_layer || !routed[static_cast<size_t>(lc.layer)])
            fail("routing profile: layer {} has no routed experts in {}", lc.layer, model.name);
        if (static_cast<int64_t>(lc.counts.size()) != model.n_expert)
            fail("routing profile: layer {} has {} counts, {} has {} experts", lc.layer,
                 lc.counts.size(), model.name, model.n_expert);
        const double total =
            static_cast<double>(std::accumulate(lc.counts.begin(), lc.counts.end(), uint64_t{0}));
        if (total == 0) continue;  // nothing recorded: stays uniform
        auto& row = u[static_cast<size_t>(lc.layer)];
        for (size_t e = 0; e < row.size(); ++e)
            row[e] = used * static_cast<double>(lc.counts[e]) / total;
    }
    return u;
}

namespace {

constexpr size_t kGpu = static_cast<size_t>(Tier::Gpu);
constexpr size_t kRam = static_cast<size_t>(Tier::Ram);

// Preference for the GPU among the parts every token reads: the earlier, the more it gains.
// The KV cache comes right after attention (rank 2), whose reads it serves. The token
// embedding table is last and never on the GPU: a token reads one row of it.
int rank_of(Part part) {
    switch (part) {
        case Part::Norm:
            return 0;
        case Part::Attention:
            return 1;
        case Part::Router:
            return 3;
        case Part::SharedExperts:
            return 4;
        case Part::DenseFfn:
            return 5;
        case Part::Output:
            return 6;
        case Part::Other:
            return 7;
        case Part::TokenEmbd:
            return 8;
        case Part::RoutedExperts:
            return 9;
    }
    return 9;
}
constexpr int kKvRank = 2;

// The grid of GPU rooms plan() tries below the budget: 0, then 1 MiB growing by 2^(1/4) (19%
// steps); the same for every budget.
uint64_t next_grid_room(uint64_t room) {
    constexpr uint64_t MiB = 1ull << 20;
    if (room < MiB) return MiB;
    return static_cast<uint64_t>(static_cast<double>(room) * 1.1892071150027210) + 1;
}

std::string gib(uint64_t b) {
    return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1ull << 30));
}

// A placement with every whole tensor in RAM and every slab given `slab_tier`.
Placement all_in(const ModelInfo& model, Tier slab_tier) {
    Placement p;
    p.tensors.resize(model.tensors.size());
    for (size_t i = 0; i < model.tensors.size(); ++i) {
        const TensorInfo& t = model.tensors[i];
        p.tensors[i].tier = t.part == Part::RoutedExperts ? slab_tier : Tier::Ram;
        if (t.part == Part::RoutedExperts)
            p.tensors[i].slabs.assign(static_cast<size_t>(t.n_expert), slab_tier);
    }
    return p;
}

// Recomputes the per-tier totals and each stack's majority tier from the tensors' tiers.
void total(const ModelInfo& model, Placement& p) {
    p.bytes = {};
    for (size_t i = 0; i < model.tensors.size(); ++i) {
        const TensorInfo& t = model.tensors[i];
        TensorPlacement& tp = p.tensors[i];
        if (tp.slabs.empty()) {
            p.bytes[static_cast<size_t>(tp.tier)] += t.bytes;
            continue;
        }
        std::array<int64_t, kTierCount> n{};
        for (size_t e = 0; e < tp.slabs.size(); ++e) {
            // The last slab takes the remainder, so that the stack's bytes add up exactly.
            const uint64_t slab = e + 1 < tp.slabs.size()
                                      ? t.slab_bytes()
                                      : t.bytes - t.slab_bytes() * (tp.slabs.size() - 1);
            p.bytes[static_cast<size_t>(tp.slabs[e])] += slab;
            ++n[static_cast<size_t>(tp.slabs[e])];
        }
        tp.tier = static_cast<Tier>(std::max_element(n.begin(), n.end()) - n.begin());
    }
    p.bytes[static_cast<size_t>(p.kv_tier)] += p.kv_bytes;
}

// A routed expert of a layer: its gate, up and down slabs go together (one cache slot).
struct Unit {
    int64_t layer = 0, expert = 0;
    double reads = 0;  // expected selections per token
    uint64_t bytes = 0;
};

Placement plan_moe(const ModelInfo& model, const Figures& figures, const Budgets& budgets,
                   const std::vector<std::vector<double>>& u, uint64_t gpu_room) {
    // Routed slabs start on NVMe so that the RAM total below counts only what must be resident.
    Placement p = all_in(model, Tier::Nvme);
    p.kv_bytes = model.kv_bytes_per_token * static_cast<uint64_t>(budgets.ctx);

    // The shared parts, in order of preference, first fit on the GPU; the rest in RAM.
    std::vector<size_t> order;
    for (size_t i = 0; i < model.tensors.size(); ++i)
        if (model.tensors[i].part != Part::RoutedExperts) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return rank_of(model.tensors[a].part) < rank_of(model.tensors[b].part);
    });
    uint64_t gpu_left = gpu_room;
    bool kv_done = false;
    const auto place_kv = [&] {
        kv_done = true;
        if (p.kv_bytes <= gpu_left) {
            p.kv_tier = Tier::Gpu;
            gpu_left -= p.kv_bytes;
        }
    };
    for (size_t i : order) {
        const TensorInfo& t = model.tensors[i];
        if (!kv_done && rank_of(t.part) > kKvRank) place_kv();
        if (t.part != Part::TokenEmbd && t.bytes <= gpu_left) {
            p.tensors[i].tier = Tier::Gpu;
            gpu_left -= t.bytes;
        }
    }
    if (!kv_done) place_kv();
    total(model, p);
    const uint64_t ram_resident = p.bytes[kRam];
    if (ram_resident > budgets.ram_bytes)
        fail(
            "--ram {} cannot hold the parts that must stay resident: {} in RAM after {} on the "
            "GPU (attention, norms, router, shared experts, embeddings{})",
            gib(budgets.ram_bytes), gib(ram_resident), gib(p.bytes[kGpu]),
            p.kv_tier == Tier::Ram ? ", KV cache" : "");

    // The routed experts as units, hottest first.
    std::vector<uint64_t> unit_bytes(static_cast<size_t>(model.n_layer * model.n_expert), 0);
    for (const TensorInfo& t : model.tensors)
        if (t.part == Part::RoutedExperts)
            for (int64_t e = 0; e < t.n_expert; ++e)
                unit_bytes[static_cast<size_t>(t.layer * model.n_expert + e)] += t.slab_bytes();
    std::vector<Unit> units;
    for (int64_t l = 0; l < model.n_layer; ++l)
        for (int64_t e = 0; e < model.n_expert; ++e) {
            const uint64_t b = unit_bytes[static_cast<size_t>(l * model.n_expert + e)];
            if (b > 0)
                units.push_back({l, e, u[static_cast<size_t>(l)][static_cast<size_t>(e)], b});
        }
    std::stable_sort(units.begin(), units.end(),
                     [](const Unit& a, const Unit& b) { return a.reads > b.reads; });
    for (const Unit& un : units) p.slot_bytes = std::max(p.slot_bytes, un.bytes);
    const size_t n = units.size();
    std::vector<double> read_prefix(n + 1, 0.0);  // expected bytes per token of units [0, k)
    std::vector<uint64_t> byte_prefix(n + 1, 0);  // bytes of units [0, k)
    for (size_t k = 0; k < n; ++k) {
        read_prefix[k + 1] = read_prefix[k] + units[k].reads * static_cast<double>(units[k].bytes);
        byte_prefix[k + 1] = byte_prefix[k] + units[k].bytes;
    }

    // The hottest k units on the GPU; the others all in RAM when they fit, else homed on NVMe
    // behind a cache of the RAM left. k is the one the cost model finds fastest among those that
    // fit: past the point where the GPU's share of the routed reads takes longer than the CPU's,
    // more experts on the GPU only slow the step down (the two sides run at once).
    const uint64_t ram_left = budgets.ram_bytes - ram_resident;
    const int64_t slots = p.slot_bytes > 0 ? static_cast<int64_t>(ram_left / p.slot_bytes) : 0;
    const double gpu_bw = figures.gpu_gbs * figures.gpu_efficiency * 1e9;
    const double cpu_bw = figures.ram_gbs * figures.cpu_efficiency * 1e9;
    const double nvme_bw = figures.nvme_gbs * 1e9;
    size_t best_k = 0, last_k = 0;
    bool any = false;
    double best_t = std::numeric_limits<double>::infinity();
    for (size_t k = 0; k <= n; ++k) {
        if (byte_prefix[k] > gpu_left) break;
        const uint64_t rest = byte_prefix[n] - byte_prefix[k];
        double c = 0, d = 0;
        if (rest <= ram_left) {
            c = (read_prefix[n] - read_prefix[k]) / cpu_bw;
        } else {
            if (slots < 1) continue;  // the cache needs one slot at least
            const size_t hot = std::min(n, k + static_cast<size_t>(slots));
            c = (read_prefix[hot] - read_prefix[k]) / cpu_bw;
            d = (read_prefix[n] - read_prefix[hot]) / nvme_bw;
        }
        const double t = std::max({read_prefix[k] / gpu_bw, c, d});
        if (t < best_t) {
            best_t = t;
            best_k = k;
        }
        last_k = k;
        any = true;
    }
    if (!any)
        fail(
            "--ram {} leaves {} for routed experts: less than one expert of one layer ({}) for "
            "the RAM cache",
            gib(budgets.ram_bytes), gib(ram_left), gib(p.slot_bytes));

    // The placement with the hottest k units on the GPU.
    const auto assign = [&](size_t k) {
        Placement q = p;
        const bool all_in_ram = byte_prefix[n] - byte_prefix[k] <= ram_left;
        std::vector<Tier> tier_of(static_cast<size_t>(model.n_layer * model.n_expert), Tier::Ram);
        for (size_t j = 0; j < n; ++j)
            tier_of[static_cast<size_t>(units[j].layer * model.n_expert + units[j].expert)] =
                j < k ? Tier::Gpu : (all_in_ram ? Tier::Ram : Tier::Nvme);
        for (size_t i = 0; i < model.tensors.size(); ++i) {
            const TensorInfo& t = model.tensors[i];
            if (t.part != Part::RoutedExperts) continue;
            for (int64_t e = 0; e < t.n_expert; ++e)
                q.tensors[i].slabs[static_cast<size_t>(e)] =
                    tier_of[static_cast<size_t>(t.layer * model.n_expert + e)];
        }
        q.kv_gpu_bytes = q.kv_tier == Tier::Gpu ? q.kv_bytes : 0;
        if (!all_in_ram) {
            q.cache_slots = slots;
            q.ram_cache_bytes = static_cast<uint64_t>(slots) * q.slot_bytes;
        }
        total(model, q);
        q.prediction = predict(model, q, figures, u);
        return q;
    };
    // The balance point above ignores PCIe crossings, which only go away when a layer has no
    // expert left on the CPU: the fullest GPU is the other candidate.
    Placement best = assign(best_k);
    if (last_k != best_k) {
        Placement full = assign(last_k);
        if (full.prediction.decode_tps > best.prediction.decode_tps) best = std::move(full);
    }
    return best;
}

// Dense models: every layer's stage either side. `gpu_layers` blocks take the GPU whole
// (WholeLayers) or every block's attention and the first `gpu_layers` FFNs (AttentionOnly); the
// global parts (output head and norm, rope factors) go first when they fit.
Placement dense_candidate(const ModelInfo& model, const Budgets& budgets, DenseSplit split,
                          int64_t gpu_layers, bool globals_on_gpu, uint64_t gpu_room, bool* fits) {
    Placement p = all_in(model, Tier::Ram);
    p.split = split;
    p.gpu_layers = gpu_layers;
    p.kv_bytes = model.kv_bytes_per_token * static_cast<uint64_t>(budgets.ctx);
    const uint64_t kv_layer =
        model.n_layer > 0 ? p.kv_bytes / static_cast<uint64_t>(model.n_layer) : 0;
    for (size_t i = 0; i < model.tensors.size(); ++i) {
        const TensorInfo& t = model.tensors[i];
        if (t.part == Part::TokenEmbd) continue;
        bool to_gpu = false;
        if (split == DenseSplit::None) {
            to_gpu = false;
        } else if (t.layer < 0) {
            to_gpu = globals_on_gpu;
        } else if (split == DenseSplit::WholeLayers) {
            to_gpu = t.layer < gpu_layers;
        } else {
            const bool attention = t.part == Part::Attention || t.part == Part::Norm;
            to_gpu = attention || t.layer < gpu_layers;
        }
        if (to_gpu) p.tensors[i].tier = Tier::Gpu;
    }
    // The KV cache lives with the attention that reads it; a split one is kept whole on the CPU
    // side for the layers not on the GPU, counted on the GPU for those that are.
    const int64_t kv_gpu_layers = split == DenseSplit::AttentionOnly ? model.n_layer
                                  : split == DenseSplit::WholeLayers ? gpu_layers
                                                                     : 0;
    const uint64_t kv_gpu = kv_gpu_layers == model.n_layer
                                ? p.kv_bytes
                                : kv_layer * static_cast<uint64_t>(kv_gpu_layers);
    p.kv_tier = kv_gpu_layers == model.n_layer && split != DenseSplit::None ? Tier::Gpu : Tier::Ram;
    total(model, p);
    if (p.kv_tier == Tier::Ram && kv_gpu > 0) {  // part of it on the GPU
        p.bytes[kRam] -= kv_gpu;
        p.bytes[kGpu] += kv_gpu;
    }
    p.kv_gpu_bytes = kv_gpu;
    *fits = p.bytes[kGpu] <= gpu_room && p.bytes[kRam] <= budgets.ram_bytes &&
            (p.bytes[kGpu] == 0 || gpu_room > 0);
    return p;
}

Placement plan_dense(const ModelInfo& model, const Figures& figures, const Budgets& budgets,
                     const std::vector<std::vector<double>>& u, uint64_t gpu_room) {
    Placement best;
    double best_t = -1;
    bool any = false;
    const auto consider = [&](DenseSplit split, int64_t layers, bool globals) {
        bool fits = false;
        Placement p = dense_candidate(model, budgets, split, layers, globals, gpu_room, &fits);
        if (!fits) return;
        p.prediction = predict(model, p, figures, u);
        const double t = p.prediction.decode_tps;
        if (!any || t > best_t) {
            best = std::move(p);
            best_t = t;
            any = true;
        }
    };
    consider(DenseSplit::None, 0, false);
    if (gpu_room > 0)
        for (const bool globals : {true, false})
            for (int64_t k = 0; k <= model.n_layer; ++k) {
                consider(DenseSplit::WholeLayers, k, globals);
                consider(DenseSplit::AttentionOnly, k, globals);
            }
    if (!any) {
        bool fits = false;
        const Placement cpu =
            dense_candidate(model, budgets, DenseSplit::None, 0, false, gpu_room, &fits);
        fail(
            "--gpu {} and --ram {} cannot hold {} ({} of weights and KV cache): a dense model "
            "stays resident",
            gib(budgets.gpu_bytes), gib(budgets.ram_bytes), model.name, gib(cpu.bytes[kRam]));
    }
    if (best.bytes[kGpu] == 0) best.split = DenseSplit::None;
    return best;
}

}  // namespace

Placement plan(const ModelInfo& model, const Figures& figures, const Budgets& budgets,
               const RoutingProfile& usage) {
    if (budgets.ctx <= 0) throw UsageError(fmt::format("--ctx {} is not positive", budgets.ctx));
    if (model.kv_bytes_per_token > 0 &&
        static_cast<uint64_t>(budgets.ctx) >
            std::numeric_limits<uint64_t>::max() / 4 / model.kv_bytes_per_token)
        throw UsageError(fmt::format("--ctx {} is too large", budgets.ctx));
    const std::vector<std::vector<double>> u = expert_usage(model, usage);
    const uint64_t reserve = budgets.gpu_reserve_bytes >= 0
                                 ? static_cast<uint64_t>(budgets.gpu_reserve_bytes)
                                 : std::min(kDefaultGpuReserve, budgets.gpu_bytes / 8);
    const uint64_t gpu_room = budgets.gpu_bytes > reserve ? budgets.gpu_bytes - reserve : 0;
    if (!model.moe()) {
        Placement p = plan_dense(model, figures, budgets, u, gpu_room);
        p.gpu_reserve = p.bytes[kGpu] > 0 ? reserve : 0;
        return p;
    }
    // MoE: the greedy fill at the whole room, and at every point of a fixed grid of smaller
    // rooms; the fastest wins. A greedy plan with more room can predict slower than one with
    // less (a tensor moved to the GPU may add PCIe crossings that cost more than its reads save,
    // as on golden-sized models); the grid does not depend on the budget, so a larger budget
    // sees every candidate a smaller one saw but its own full-room plan, and more budget never
    // predicts much slower.
    Placement best = plan_moe(model, figures, budgets, u, gpu_room);
    // A plan with room r reads at least (bytes per token - r) on the CPU side, which alone takes
    // that over the CPU's bandwidth: rooms where that exceeds the best time cannot win.
    double per_token = 0;
    for (const TensorInfo& t : model.tensors) {
        if (t.part == Part::TokenEmbd) continue;
        if (t.part != Part::RoutedExperts) {
            per_token += static_cast<double>(t.bytes);
            continue;
        }
        for (int64_t e = 0; e < t.n_expert; ++e)
            per_token += u[static_cast<size_t>(t.layer)][static_cast<size_t>(e)] *
                         static_cast<double>(t.slab_bytes());
    }
    const double cpu_bw = figures.ram_gbs * figures.cpu_efficiency * 1e9;
    const double useless_below = per_token - cpu_bw / best.prediction.decode_tps;
    for (uint64_t room = 0; room < gpu_room; room = next_grid_room(room)) {
        if (static_cast<double>(room) < useless_below) continue;
        try {
            Placement p = plan_moe(model, figures, budgets, u, room);
            if (p.prediction.decode_tps > best.prediction.decode_tps) best = std::move(p);
        } catch (const Error&) {
            // Less room on the GPU leaves more to RAM: that room cannot be planned.
        }
    }
    best.gpu_reserve = best.bytes[kGpu] > 0 ? reserve : 0;
    return best;
}

}  // namespace strata::scheduler
