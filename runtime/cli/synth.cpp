// strata synth: writes a synthetic model with seeded random weights (or, for shape-only presets,
// a real header with the data left a hole).
#include <cctype>
#include <cstdio>

#include <fmt/format.h>

#include "runtime/cli/commands.h"
#include "runtime/error.h"
#include "runtime/progress.h"
#include "synth/synth.h"

namespace strata::cli {
namespace {

struct SynthArgs {
    std::string arch, preset, out, type, split_max, fill;
    uint64_t seed = 0;
    bool list = false, legacy_mla = false, tied = false, untied = false, shape_only = false;
    synth::Overrides o;
    std::string gating;
};

// "50G" → 50·10⁹: decimal units, as llama-gguf-split's --split-max-size reads them.
uint64_t parse_split_size(const std::string& text) {
    size_t used = 0;
    uint64_t v = 0;
    try {
        v = std::stoull(text, &used);
    } catch (const std::exception&) {
        throw UsageError(fmt::format("--split-max-size '{}' is not a size (e.g. 50G)", text));
    }
    uint64_t unit = 1;
    const std::string suffix = text.substr(used);
    if (suffix == "K" || suffix == "k") {
        unit = 1000;
    } else if (suffix == "M" || suffix == "m") {
        unit = 1000'000;
    } else if (suffix == "G" || suffix == "g") {
        unit = 1000'000'000;
    } else if (suffix == "T" || suffix == "t") {
        unit = 1000'000'000'000;
    } else if (!suffix.empty()) {
        throw UsageError(
            fmt::format("--split-max-size '{}' has an unknown unit (K, M, G, T)", text));
    }
    if (v > UINT64_MAX / unit)
        throw UsageError(fmt::format("--split-max-size '{}' is too large", text));
    return v * unit;
}

void list_presets() {
    for (const synth::PresetInfo& p : synth::presets()) {
        fmt::print("{:<22} {:<10} {}{}\n", p.name, arch_name(p.arch), p.about,
                   p.shape_only ? " [shape only]" : "");
    }
}

void run(SynthArgs& a) {
    if (a.list) {
        list_presets();
        return;
    }
    if (a.preset.empty()) throw UsageError("--preset is required (see --list)");
    if (a.out.empty()) throw UsageError("-o OUT.gguf is required");
    std::optional<Arch> arch;
    if (!a.arch.empty()) {
        arch = synth::parse_arch(a.arch);
        if (!arch)
            throw UsageError(fmt::format("unknown --arch '{}' (deepseek2, llama, qwen2)", a.arch));
    }
    synth::Spec spec = synth::make_spec(a.preset, arch);
    if (!a.type.empty()) {
        const auto target = recipe::parse_target(a.type);
        if (!target) {
            throw UsageError(
                fmt::format("unknown --type '{}' (types: {})", a.type, recipe::target_names()));
        }
        spec.target = *target;
    }
    spec.seed = a.seed;
    if (!a.fill.empty()) {
        const auto fill = synth::parse_fill(a.fill);
        if (!fill)
            throw UsageError(fmt::format("unknown --fill '{}' (auto, quantize, random)", a.fill));
        if (a.shape_only) throw UsageError("--fill and --shape-only exclude each other");
        synth::set_fill(spec, *fill);
    }
    if (a.shape_only) spec.shape_only = true;
    if (!a.split_max.empty()) spec.split_max_bytes = parse_split_size(a.split_max);
    if (a.tied && a.untied) throw UsageError("--tied and --untied exclude each other");
    if (a.tied || a.untied) a.o.tied = a.tied;
    if (!a.gating.empty()) a.o.gating = a.gating;
    a.o.legacy_mla = a.legacy_mla;
    synth::apply(spec, a.o);

    const synth::Written w = synth::write_model(spec, a.out);
    fmt::print("{}: {} {} model, {} tensors, {} parameters, {}{}\n", w.paths.front(),
               arch_name(spec.hp.arch), spec.preset, w.n_tensors, w.n_params,
               recipe::target_name(spec.target),
               spec.shape_only                 ? ", shape only (data is a hole)"
               : w.fill == synth::Fill::Random ? ", random blocks"
                                               : "");
    for (const std::string& p : w.paths) fmt::print("  {}\n", p);
    fmt::print("  {} in {} file{}, written in {:.1f} s ({:.2f} GB/s)\n", format_bytes(w.file_bytes),
               w.paths.size(), w.paths.size() > 1 ? "s" : "", w.seconds,
               w.seconds > 0 ? static_cast<double>(w.file_bytes) / w.seconds / 1e9 : 0.0);
}

}  // namespace

void add_synth(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "synth",
        "Write a synthetic model: converter-exact keys and tensor layout, seeded random weights");
    auto a = std::make_shared<SynthArgs>();
    cmd->add_option("--arch", a->arch, "deepseek2, llama or qwen2");
    cmd->add_option("--preset", a->preset,
                    "tiny, tiny-lite, tiny-legacy, bench or a shape-only model (--list)");
    cmd->add_option("-o,--output", a->out, "output file (split models: OUT-0000k-of-0000n.gguf)");
    cmd->add_option("--type", a->type,
                    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K (pure) or a mix: "
                    "Q4_K_M, Q4_K_S, Q5_K_M, Q5_K_S, Q3_K_S/M/L (default: F32 for tiny presets, "
                    "Q4_K_M otherwise)");
    cmd->add_option("--seed", a->seed, "random seed (default 0)");
    cmd->add_option("--fill", a->fill,
                    "how data is made: quantize (floats through the reference quantizer), random "
                    "(valid quantized blocks of the same magnitudes written directly, at disk "
                    "speed) or auto (random past 4 GB; default). On a shape-only preset, writes "
                    "that shape with data and a full tokenizer");
    cmd->add_option("--split-max-size", a->split_max,
                    "split into shards of at most SIZE (50G = 50e9 bytes)");
    cmd->add_flag("--list", a->list, "list the presets");
    cmd->add_flag("--shape-only", a->shape_only,
                  "write the header only and leave the data a hole (a sparse file)");
    auto& o = a->o;
    cmd->add_option("--layers", o.layers, "blocks");
    cmd->add_option("--embd", o.embd, "embedding width");
    cmd->add_option("--heads", o.heads, "attention heads");
    cmd->add_option("--heads-kv", o.heads_kv, "KV heads (llama, qwen2)");
    cmd->add_option("--head-dim", o.head_dim, "head size (llama, qwen2)");
    cmd->add_option("--ff", o.ff, "dense FFN width");
    cmd->add_option("--vocab", o.vocab, "vocabulary size");
    cmd->add_option("--ctx", o.ctx, "training context length");
    cmd->add_flag("--tied", a->tied, "tie the output to the token embeddings");
    cmd->add_flag("--untied", a->untied, "give the model its own output.weight");
    cmd->add_option("--q-lora", o.q_lora, "deepseek2: q compression rank (0: none)");
    cmd->add_option("--kv-lora", o.kv_lora, "deepseek2: kv compression rank");
    cmd->add_option("--qk-nope", o.qk_nope, "deepseek2: per-head K size without RoPE");
    cmd->add_option("--qk-rope", o.qk_rope, "deepseek2: per-head RoPE size");
    cmd->add_option("--v-head", o.v_head, "deepseek2: per-head V size");
    cmd->add_option("--experts", o.experts, "deepseek2: routed experts");
    cmd->add_option("--experts-used", o.experts_used, "deepseek2: experts per token");
    cmd->add_option("--shared-experts", o.shared_experts, "deepseek2: shared experts");
    cmd->add_option("--ff-exp", o.ff_exp, "deepseek2: expert FFN width");
    cmd->add_option("--dense-layers", o.dense_layers, "deepseek2: leading dense blocks");
    cmd->add_option("--groups", o.groups, "deepseek2: expert groups");
    cmd->add_option("--groups-used", o.groups_used, "deepseek2: groups chosen per token");
    cmd->add_option("--gating", a->gating, "deepseek2: softmax or sigmoid");
    cmd->add_flag("--legacy-mla", a->legacy_mla,
                  "deepseek2: one attn_kv_b per block (pre-split files)");
    cmd->callback([a] { run(*a); });
}

}  // namespace strata::cli
