// strata tune: replays a routing trace (bench/run --trace-out) through expert-cache policies and
// budgets, without reading the experts, and reports the hit rate of each.
//   strata tune -m MODEL --trace FILE [--expert-pct 10,25,50,75] [--policies lru,lfu]
//               [--skip N] [--json]
// A budget here is a share of the routed experts' bytes given to slots (the resident part and
// the KV cache come on top). The first N trace lines (a prompt's layers) warm the cache and are
// not counted. The hit rate is the cache's alone: a live run also prefetches the next layer.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "offload/expert_cache.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/infer_args.h"
#include "runtime/error.h"
#include "runtime/expert_table.h"

namespace strata::cli {
namespace {

struct TuneOptions {
    std::string model;
    std::string trace;
    std::vector<double> pcts{10, 25, 50, 75};
    std::vector<std::string> policies{"lru", "lfu"};
    int64_t skip = 0;
    bool json = false;
};

struct Step {
    int64_t layer = 0;
    std::vector<int32_t> ids;  // (experts routed in this pass)
};

std::vector<Step> read_trace(const std::string& path) {
    std::ifstream in(path);
    if (!in) fail("{}: cannot open the routing trace", path);
    std::vector<Step> steps;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        Step s;
        if (!(fields >> s.layer)) continue;
        for (int32_t id = 0; fields >> id;) s.ids.push_back(id);
        steps.push_back(std::move(s));
    }
    return steps;
}

void run_tune(const TuneOptions& o) {
    const Model model = load_model(o.model);
    const std::vector<Step> steps = read_trace(o.trace);
    offload::StoreTable table = expert_table(model);
    if (table.n_layer == 0) fail("{}: the model has no routed experts", o.model);
    const offload::ExpertStore store(std::move(table));
    nlohmann::json rows = nlohmann::json::array();
    if (!o.json)
        fmt::print("{:>8} {:>8} {:>7} {:>10} {:>10}\n", "policy", "experts%", "slots", "hit_rate",
                   "MiB/step");
    for (const std::string& name : o.policies) {
        const offload::Policy policy = offload::parse_policy(name);
        for (const double pct : o.pcts) {
            offload::CacheOptions co;
            co.budget_bytes =
                store.resident_bytes() +
                static_cast<uint64_t>(pct / 100.0 * static_cast<double>(store.expert_bytes()));
            co.policy = policy;
            co.reader.simulate = true;
            co.reader.quiet = true;
            if (policy == offload::Policy::Pinned) fail("tune: pinned needs a live run");
            offload::ExpertCache cache(offload::ExpertStore(store.table()), co);
            offload::CacheStats before;
            std::vector<offload::ExpertHandle> held;
            for (size_t i = 0; i < steps.size(); ++i) {
                if (static_cast<int64_t>(i) == o.skip) before = cache.stats();
                const Step& s = steps[i];
                size_t done = 0;
                while (done < s.ids.size()) {
                    held.clear();
                    done +=
                        cache.acquire(s.layer, std::span<const int32_t>(s.ids).subspan(done), held);
                    cache.release(held);
                }
            }
            const offload::CacheStats st = cache.stats() - before;
            const double n = static_cast<double>(steps.size()) - static_cast<double>(o.skip);
            const double mib = n > 0 ? static_cast<double>(st.bytes_read) / n / (1 << 20) : 0;
            rows.push_back({{"policy", name},
                            {"expert_pct", pct},
                            {"slots", cache.n_slots()},
                            {"hit_rate", st.hit_rate()},
                            {"hits", st.hits},
                            {"misses", st.misses},
                            {"bytes_read", st.bytes_read}});
            if (!o.json)
                fmt::print("{:>8} {:>8.1f} {:>7} {:>10.4f} {:>10.2f}\n", name, pct, cache.n_slots(),
                           st.hit_rate(), mib);
        }
    }
    if (o.json) fmt::print("{}\n", nlohmann::json{{"steps", steps.size()}, {"rows", rows}}.dump());
}

}  // namespace

void add_tune(CLI::App& app) {
    auto* cmd = app.add_subcommand("tune", "Replay a routing trace through expert-cache policies");
    static TuneOptions o;
    cmd->add_option("-m,--model", o.model, "GGUF model file the trace was taken on")->required();
    cmd->add_option("--trace", o.trace, "Routing trace (bench or run --trace-out)")->required();
    cmd->add_option("--expert-pct", o.pcts, "Slot budgets as % of routed-expert bytes")
        ->delimiter(',');
    cmd->add_option("--policies", o.policies, "Policies to replay (lru, lfu)")->delimiter(',');
    cmd->add_option("--skip", o.skip, "Trace lines that warm the cache without being counted");
    cmd->add_flag("--json", o.json, "Print one JSON object");
    cmd->callback([] { run_tune(o); });
}

}  // namespace strata::cli
