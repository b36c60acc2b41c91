// Writing synthetic models: headers per shard, tensor data produced in the writer's fill
// callback (one tensor in memory at a time), a disk-space check before the first byte.
#include "synth/synth.h"

#include <sys/statvfs.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "runtime/error.h"
#include "runtime/progress.h"
#include "synth/metadata.h"
#include "synth/weights.h"

namespace strata::synth {
namespace {

// Free bytes for an unprivileged writer on the filesystem holding `path`, or nullopt when the
// directory cannot be asked (the write itself will then report why).
std::optional<uint64_t> free_bytes(const std::string& path) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
    return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

}  // namespace

Layout make_layout(const Spec& spec) {
    Layout layout;
    layout.tensors = plan_tensors(spec);
    const uint32_t n_shards = assign_shards(layout.tensors, spec.split_max_bytes);
    for (const TensorPlan& t : layout.tensors) layout.n_params += t.n_elements();

    // Auto: random blocks once quantizing floats would take minutes (~80 ns a weight).
    uint64_t data_bytes = 0;
    for (const TensorPlan& t : layout.tensors) data_bytes += t.bytes;
    Spec resolved = spec;
    if (resolved.fill == Fill::Auto)
        resolved.fill = data_bytes > kRandomFillFromBytes ? Fill::Random : Fill::Quantize;
    layout.fill = resolved.fill;

    // The fills outlive this call: they share one copy of the spec.
    const auto shared = std::make_shared<const Spec>(std::move(resolved));
    layout.shards.resize(n_shards);
    write_metadata(layout.shards[0], spec, layout.n_params);
    if (n_shards > 1) {
        // llama-gguf-split: shard 0 keeps every key, the others only the split keys.
        for (uint32_t i = 0; i < n_shards; ++i) {
            gguf::Writer& w = layout.shards[i];
            w.set_u16("split.no", static_cast<uint16_t>(i));
            w.set_u16("split.count", static_cast<uint16_t>(n_shards));
            w.set_i32("split.tensors.count", static_cast<int32_t>(layout.tensors.size()));
        }
    }
    for (const TensorPlan& t : layout.tensors) {
        gguf::Writer::Fill fill;
        if (!spec.shape_only) {
            fill = [shared, t](uint8_t* dst, size_t n) { fill_tensor(*shared, t, dst, n); };
        }
        layout.shards[t.shard].add_tensor(t.name, t.type, t.ne, std::move(fill));
    }
    return layout;
}

std::vector<std::string> shard_paths(const std::string& path, size_t n_shards) {
    if (n_shards <= 1) return {path};
    std::string prefix = path;
    if (prefix.ends_with(".gguf")) prefix.resize(prefix.size() - 5);
    std::vector<std::string> out;
    for (size_t i = 0; i < n_shards; ++i)
        out.push_back(
            gguf::split_path(prefix, static_cast<uint32_t>(i), static_cast<uint32_t>(n_shards)));
    return out;
}

Written write_model(const Spec& spec, const std::string& path) {
    const Layout layout = make_layout(spec);
    Written w;
    w.fill = layout.fill;
    w.paths = shard_paths(path, layout.shards.size());
    w.n_tensors = layout.tensors.size();
    w.n_params = layout.n_params;

    // Everything that can be refused is refused before the first file is created.
    uint64_t data_bytes = 0;
    if (!spec.shape_only) {
        std::set<quant::Type> types;
        Spec resolved = spec;
        resolved.fill = layout.fill;
        for (const TensorPlan& t : layout.tensors)
            if (!fills_random(resolved, t)) types.insert(t.type);
        for (quant::Type t : types) require_quantizer(t);
    }
    for (const gguf::Writer& shard : layout.shards) {
        w.file_bytes += shard.file_bytes();
        data_bytes += spec.shape_only ? shard.header_bytes() : shard.file_bytes();
    }
    if (const auto avail = free_bytes(path); avail && data_bytes > *avail) {
        fail("{}: the model needs {} ({} bytes) but only {} are free there", path,
             format_bytes(data_bytes), data_bytes, format_bytes(*avail));
    }

    const auto start = std::chrono::steady_clock::now();
    Progress progress(fmt::format("writing {}", path), w.file_bytes, true);
    uint64_t before = 0;
    std::vector<std::string> done;
    try {
        for (size_t i = 0; i < layout.shards.size(); ++i) {
            layout.shards[i].write(
                w.paths[i], [&](uint64_t written, uint64_t) { progress.update(before + written); });
            done.push_back(w.paths[i]);
            before += layout.shards[i].file_bytes();
        }
    } catch (...) {
        // A model missing shards is no model: remove the ones already written.
        std::error_code ec;
        for (const std::string& p : done) std::filesystem::remove(p, ec);
        throw;
    }
    progress.finish();
    w.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return w;
}

}  // namespace strata::synth
