#include "scheduler/routing_profile.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/error.h"

namespace strata::scheduler {

RoutingProfile routing_profile_from_counts(const std::vector<std::vector<uint64_t>>& counts) {
    RoutingProfile p;
    for (size_t il = 0; il < counts.size(); ++il)
        if (!counts[il].empty()) p.layers.push_back({static_cast<int64_t>(il), counts[il]});
    return p;
}

RoutingProfile read_routing_profile(const std::string& path) {
    std::ifstream in(path);
    if (!in) fail("routing profile '{}': cannot open", path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        fail("routing profile '{}': not JSON ({})", path, e.what());
    }
    if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array())
        fail("routing profile '{}': expected an object with a \"layers\" array", path);
    RoutingProfile p;
    for (size_t i = 0; i < j["layers"].size(); ++i) {
        const nlohmann::json& e = j["layers"][i];
        if (!e.is_object() || !e.contains("layer") || !e["layer"].is_number_integer() ||
            !e.contains("counts") || !e["counts"].is_array())
            fail(
                "routing profile '{}': layers[{}] needs an integer \"layer\" and a \"counts\" "
                "array",
                path, i);
        LayerCounts lc;
        lc.layer = e["layer"].get<int64_t>();
        if (lc.layer < 0) fail("routing profile '{}': layers[{}] has layer {}", path, i, lc.layer);
        for (const nlohmann::json& c : e["counts"]) {
            if (!c.is_number_unsigned() && !(c.is_number_integer() && c.get<int64_t>() >= 0))
                fail(
                    "routing profile '{}': layer {} has a count that is not a non-negative integer",
                    path, lc.layer);
            lc.counts.push_back(c.get<uint64_t>());
        }
        for (const LayerCounts& seen : p.layers)
            if (seen.layer == lc.layer)
                fail("routing profile '{}': layer {} appears twice", path, lc.layer);
        p.layers.push_back(std::move(lc));
    }
    return p;
}

std::string routing_profile_json(const RoutingProfile& profile) {
    std::ostringstream out;
    out << "{\"layers\": [";
    for (size_t i = 0; i < profile.layers.size(); ++i) {
        const LayerCounts& lc = profile.layers[i];
        out << (i ? ",\n  " : "\n  ") << "{\"layer\": " << lc.layer << ", \"counts\": [";
        for (size_t e = 0; e < lc.counts.size(); ++e) out << (e ? ", " : "") << lc.counts[e];
        out << "]}";
    }
    out << (profile.layers.empty() ? "]}\n" : "\n]}\n");
    return out.str();
}

void write_routing_profile(const std::string& path, const RoutingProfile& profile) {
    std::ofstream out(path, std::ios::trunc);
    if (!out) fail("routing profile '{}': cannot write", path);
    out << routing_profile_json(profile);
    out.flush();
    if (!out) fail("routing profile '{}': write failed", path);
}

}  // namespace strata::scheduler
