// strata inspect: what a GGUF model holds (metadata, tensor table, totals by type and by role)
// and whether Strata can run it. `--json` prints one JSON object on stdout and nothing else
// there; the JSON keeps the golden manifest's conventions (arrays summarised as
// {"array_of", "len"}, tensor offsets absolute in their file) so the two compare directly.
#include <cstdio>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/cli/commands.h"
#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/progress.h"

namespace strata::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kArrayItemsShown = 5;  // long arrays (token lists) are summarised
constexpr size_t kStringShown = 72;     // long strings (chat templates) are cut in the text view

struct Totals {
    int64_t tensors = 0;
    int64_t params = 0;
    uint64_t bytes = 0;
    void add(const gguf::Tensor& t) {
        ++tensors;
        params += t.n_elements();
        bytes += t.nbytes;
    }
};

struct Report {
    std::map<std::string, Totals> by_type;  // type name → totals
    std::array<Totals, kRoleCount> by_role{};
    Totals all;
    std::vector<std::string> problems;
};

Report summarise(const gguf::File& file) {
    Report r;
    for (const gguf::Tensor& t : file.tensors()) {
        r.by_type[std::string(quant::type_name(t.type))].add(t);
        r.by_role[static_cast<size_t>(role_of(t.name))].add(t);
        r.all.add(t);
    }
    r.problems = Model::validate(file);
    return r;
}

// Element i of a fixed-size array, as JSON.
Json array_item(const gguf::Value& v, uint64_t i) {
    const uint8_t* p = v.raw + i * gguf::value_size(v.elem);
    auto read = [p]<typename T>(T) {
        T x;
        std::memcpy(&x, p, sizeof(T));
        return x;
    };
    switch (v.elem) {
        case gguf::ValueType::UINT8:
            return read(uint8_t{});
        case gguf::ValueType::INT8:
            return read(int8_t{});
        case gguf::ValueType::UINT16:
            return read(uint16_t{});
        case gguf::ValueType::INT16:
            return read(int16_t{});
        case gguf::ValueType::UINT32:
            return read(uint32_t{});
        case gguf::ValueType::INT32:
            return read(int32_t{});
        case gguf::ValueType::UINT64:
            return read(uint64_t{});
        case gguf::ValueType::INT64:
            return read(int64_t{});
        case gguf::ValueType::FLOAT32:
            return read(float{});
        case gguf::ValueType::FLOAT64:
            return read(double{});
        case gguf::ValueType::BOOL:
            return read(uint8_t{}) != 0;
        default:
            return nullptr;
    }
}

// A scalar as its value; an array as {"array_of": elem type, "len": n} (the manifest's form).
Json value_json(const gguf::Value& v) {
    switch (v.type) {
        case gguf::ValueType::UINT8:
        case gguf::ValueType::UINT16:
        case gguf::ValueType::UINT32:
        case gguf::ValueType::UINT64:
            return v.u;
        case gguf::ValueType::INT8:
        case gguf::ValueType::INT16:
        case gguf::ValueType::INT32:
        case gguf::ValueType::INT64:
            return v.i;
        case gguf::ValueType::FLOAT32:
        case gguf::ValueType::FLOAT64:
            return v.f;
        case gguf::ValueType::BOOL:
            return v.u != 0;
        case gguf::ValueType::STRING:
            return std::string(v.s);
        case gguf::ValueType::ARRAY:
            return Json{{"array_of", gguf::type_name(v.elem)}, {"len", v.count}};
    }
    return nullptr;
}

Json totals_json(const Totals& t) {
    return Json{{"tensors", t.tensors}, {"params", t.params}, {"bytes", t.bytes}};
}

Json report_json(const gguf::File& file, const Report& r) {
    Json j;
    j["path"] = file.path();
    j["arch"] = std::string(file.arch());
    j["gguf_version"] = file.version();
    j["alignment"] = file.alignment();
    j["file_bytes"] = file.file_bytes();
    Json shards = Json::array();
    for (const gguf::Shard& s : file.shards())
        shards.push_back(
            {{"path", s.path}, {"bytes", s.file_bytes}, {"data_offset", s.data_offset}});
    j["shards"] = std::move(shards);
    j["n_kv"] = file.metadata().size();
    j["n_tensors"] = file.tensors().size();
    j["n_params"] = r.all.params;
    j["tensor_bytes"] = r.all.bytes;
    Json types = Json::object(), by_type = Json::object();
    for (const auto& [name, t] : r.by_type) {
        types[name] = t.tensors;
        by_type[name] = totals_json(t);
    }
    j["types"] = std::move(types);
    Json roles = Json::object(), by_role = Json::object();
    for (int i = 0; i < kRoleCount; ++i) {
        const std::string name(role_name(static_cast<Role>(i)));
        roles[name] = r.by_role[static_cast<size_t>(i)].bytes;
        by_role[name] = totals_json(r.by_role[static_cast<size_t>(i)]);
    }
    j["roles"] = std::move(roles);
    j["totals_by_type"] = std::move(by_type);
    j["totals_by_role"] = std::move(by_role);
    j["valid"] = r.problems.empty();
    j["problems"] = r.problems;
    Json meta = Json::object(), meta_types = Json::object();
    for (const gguf::KeyValue& kv : file.metadata()) {
        meta[std::string(kv.key)] = value_json(kv.value);
        meta_types[std::string(kv.key)] = gguf::type_name(kv.value.type);
    }
    j["metadata"] = std::move(meta);
    j["metadata_types"] = std::move(meta_types);
    Json tensors = Json::array();
    for (const gguf::Tensor& t : file.tensors()) {
        tensors.push_back({{"name", std::string(t.name)},
                           {"type", quant::type_name(t.type)},
                           {"shape", std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims)},
                           {"bytes", t.nbytes},
                           {"offset", t.file_offset},
                           {"shard", t.shard}});
    }
    j["tensors"] = std::move(tensors);
    return j;
}

// ---------------------------------------------------------------------------------------------
// Text view (stdout without --json).

// Control characters escaped, and long strings cut with their full size noted.
std::string show_string(std::string_view s, size_t limit) {
    // Cut at a character boundary, never inside a UTF-8 sequence.
    size_t end = std::min(s.size(), limit);
    while (end < s.size() && end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    std::string out = "\"";
    for (size_t i = 0; i < end; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7F) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
    if (end < s.size()) out += fmt::format("… ({} bytes)", s.size());
    return out;
}

std::string show_value(const gguf::Value& v) {
    if (v.type == gguf::ValueType::STRING) return show_string(v.s, kStringShown);
    if (v.type != gguf::ValueType::ARRAY) return value_json(v).dump();
    std::string out = fmt::format("{} items:", v.count);
    const uint64_t shown = std::min<uint64_t>(v.count, kArrayItemsShown);
    for (uint64_t i = 0; i < shown; ++i) {
        out += i ? ", " : " ";
        out += v.elem == gguf::ValueType::STRING ? show_string(v.strings[i], 24)
                                                 : array_item(v, i).dump();
    }
    if (v.count > shown) out += ", …";
    return out;
}

std::string share(uint64_t part, uint64_t whole) {
    return whole ? fmt::format("{:.1f}%",
                               100.0 * static_cast<double>(part) / static_cast<double>(whole))
                 : "-";
}

void print_totals_row(std::string_view name, const Totals& t, uint64_t all_bytes) {
    fmt::print("  {:<16} {:>8} {:>18} {:>18} {:>12} {:>7}\n", name, t.tensors, t.params, t.bytes,
               format_bytes(t.bytes), share(t.bytes, all_bytes));
}

void print_text(const gguf::File& file, const Report& r) {
    const size_t n_shards = file.shards().size();
    fmt::print("{}: GGUF v{}, {} shard{}, {} ({} bytes), alignment {}, {} keys, {} tensors\n",
               file.path(), file.version(), n_shards, n_shards == 1 ? "" : "s",
               format_bytes(file.file_bytes()), file.file_bytes(), file.alignment(),
               file.metadata().size(), file.tensors().size());
    if (n_shards > 1)
        for (const gguf::Shard& s : file.shards())
            fmt::print("  shard {} ({})\n", s.path, format_bytes(s.file_bytes));

    size_t key_width = 0;
    for (const gguf::KeyValue& kv : file.metadata()) key_width = std::max(key_width, kv.key.size());
    fmt::print("\nmetadata:\n");
    for (const gguf::KeyValue& kv : file.metadata()) {
        fmt::print("  {:<{}}  {:<14} {}\n", kv.key, key_width, kv.value.type_string(),
                   show_value(kv.value));
    }

    size_t name_width = 4;
    for (const gguf::Tensor& t : file.tensors()) name_width = std::max(name_width, t.name.size());
    fmt::print("\ntensors:\n  {:>5}  {:<{}}  {:<6} {:<22} {:>14} {:>14}{}\n", "#", "name",
               name_width, "type", "shape", "bytes", "offset", n_shards > 1 ? "  shard" : "");
    for (size_t i = 0; i < file.tensors().size(); ++i) {
        const gguf::Tensor& t = file.tensors()[i];
        fmt::print("  {:>5}  {:<{}}  {:<6} {:<22} {:>14} {:>14}", i, t.name, name_width,
                   quant::type_name(t.type), t.shape_string(), t.nbytes, t.file_offset);
        if (n_shards > 1) fmt::print("  {:>5}", t.shard);
        fmt::print("\n");
    }

    fmt::print("\ntotals by type:\n  {:<16} {:>8} {:>18} {:>18} {:>12} {:>7}\n", "type", "tensors",
               "params", "bytes", "", "share");
    for (const auto& [name, t] : r.by_type) print_totals_row(name, t, r.all.bytes);
    fmt::print("\ntotals by role:\n  {:<16} {:>8} {:>18} {:>18} {:>12} {:>7}\n", "role", "tensors",
               "params", "bytes", "", "share");
    for (int i = 0; i < kRoleCount; ++i) {
        const Totals& t = r.by_role[static_cast<size_t>(i)];
        if (t.tensors) print_totals_row(role_name(static_cast<Role>(i)), t, r.all.bytes);
    }
    print_totals_row("all", r.all, r.all.bytes);

    if (r.problems.empty()) {
        fmt::print("\nverdict: valid ({} model, {} parameters)\n", file.arch(), r.all.params);
        return;
    }
    fmt::print("\nverdict: not runnable, {} problem{}:\n", r.problems.size(),
               r.problems.size() == 1 ? "" : "s");
    for (const std::string& p : r.problems) fmt::print("  - {}\n", p);
}

}  // namespace

void add_inspect(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "inspect", "Show a GGUF model's metadata, tensors, totals by type and role, and verdict");
    auto path = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("MODEL", *path, "GGUF file (the first shard of a split model)")->required();
    cmd->add_flag("--json", *json, "one JSON object on stdout");
    cmd->callback([path, json] {
        const gguf::File file = gguf::File::open(*path);
        const Report report = summarise(file);
        if (*json) {
            // Token strings need not be valid UTF-8; replace what is not rather than fail.
            const std::string text =
                report_json(file, report).dump(-1, ' ', false, Json::error_handler_t::replace);
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fputc('\n', stdout);
            return;
        }
        print_text(file, report);
    });
}

}  // namespace strata::cli
