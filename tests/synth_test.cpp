// strata synth: shape-only presets against the tables of real models, tiny presets against the
// golden models' conventions, determinism, weight scales, tokenizers and command-line errors.
#include "synth/synth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "simd/fp16.h"
#include "synth/vocab.h"
#include "synth/weights.h"
#include "tests/test_util.h"

namespace strata::synth {
namespace {

using Json = nlohmann::json;
using quant::Type;

Json load_json(const std::filesystem::path& path) {
    std::ifstream in(path);
    return Json::parse(in);
}

// Keeps the keys in file order, for comparing the order of metadata keys.
nlohmann::ordered_json load_ordered(const std::filesystem::path& path) {
    std::ifstream in(path);
    return nlohmann::ordered_json::parse(in);
}

template <typename J>
const J& manifest_model(const J& manifest, const std::string& file) {
    for (const J& m : manifest["models"])
        if (m["file"] == "models/" + file) return m;
    throw std::runtime_error("no such golden model " + file);
}

std::vector<int64_t> shape_of(const gguf::Tensor& t) {
    return std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims);
}

std::vector<float> read_f32(const gguf::Tensor& t) {
    std::vector<float> v(static_cast<size_t>(t.n_elements()));
    std::memcpy(v.data(), t.data, v.size() * sizeof(float));
    return v;
}

uint64_t disk_bytes(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return static_cast<uint64_t>(st.st_blocks) * 512;
}

Spec spec_of(std::string_view preset, std::optional<Arch> arch = std::nullopt) {
    return make_spec(preset, arch);
}

bool can_quantize(Type t) {
    return quant::traits(t).quantize != nullptr;
}

// ---------------------------------------------------------------------------------------------
// Shape-only presets reproduce the tables of real models exactly.

TEST(Synth, ShapeOnlyPresetsMatchTables) {
    STRATA_REQUIRE_GOLDEN();
    const char* presets[] = {"r1-671b",
                             "v2-lite",
                             "r1-distill-llama-70b",
                             "r1-distill-llama-8b",
                             "r1-distill-qwen-32b",
                             "r1-distill-qwen-14b",
                             "r1-distill-qwen-7b",
                             "r1-distill-qwen-1.5b"};
    for (const char* preset : presets) {
        SCOPED_TRACE(preset);
        const Json table =
            load_json(test::golden_dir() / "tables" / (std::string(preset) + ".Q4_K_M.json"));
        const Spec spec = spec_of(preset);
        EXPECT_TRUE(spec.shape_only);
        const Layout layout = make_layout(spec);
        ASSERT_EQ(layout.tensors.size(), table["tensors"].size());
        std::map<std::string, int64_t> types;
        uint64_t data_bytes = 0;
        for (size_t i = 0; i < layout.tensors.size(); ++i) {
            const TensorPlan& t = layout.tensors[i];
            const Json& want = table["tensors"][i];
            EXPECT_EQ(t.name, want["name"].get<std::string>()) << i;
            EXPECT_EQ(quant::type_name(t.type), want["type"].get<std::string>()) << t.name;
            EXPECT_EQ(t.ne, want["shape"].get<std::vector<int64_t>>()) << t.name;
            EXPECT_EQ(t.bytes, want["bytes"].get<uint64_t>()) << t.name;
            if (want.contains("shard")) {
                EXPECT_EQ(t.shard, want["shard"].get<uint32_t>()) << t.name;
            }
            ++types[std::string(quant::type_name(t.type))];
            data_bytes += t.bytes;
        }
        EXPECT_EQ(layout.n_params, table["n_params"].get<int64_t>());
        EXPECT_EQ(Json(types), table["types"]);
        EXPECT_EQ(data_bytes, table["tensor_data_bytes"].get<uint64_t>());
        if (!table.contains("shards")) {
            // The header too: converter-style keys with the reduced tokenizer, as the tables'
            // generator wrote them, then every tensor padded to 32 bytes.
            ASSERT_EQ(layout.shards.size(), 1u);
            EXPECT_EQ(layout.shards[0].header_bytes(), table["header_bytes"].get<uint64_t>());
            EXPECT_EQ(layout.shards[0].file_bytes(), table["file_bytes_predicted"].get<uint64_t>());
            continue;
        }
        // llama-gguf-split's plan: every file's tensors and its exact size.
        const Json& files = table["shards"]["files"];
        ASSERT_EQ(layout.shards.size(), files.size());
        for (size_t k = 0; k < files.size(); ++k) {
            std::vector<const TensorPlan*> in;
            uint64_t padded = 0;
            for (const TensorPlan& t : layout.tensors) {
                if (t.shard != k) continue;
                in.push_back(&t);
                padded += (t.bytes + 31) / 32 * 32;
            }
            ASSERT_FALSE(in.empty());
            EXPECT_EQ(in.size(), files[k]["n_tensors"].get<size_t>()) << k;
            EXPECT_EQ(in.front()->name, files[k]["first"].get<std::string>());
            EXPECT_EQ(in.back()->name, files[k]["last"].get<std::string>());
            EXPECT_EQ(padded, files[k]["tensor_data_bytes"].get<uint64_t>()) << k;
            EXPECT_EQ(layout.shards[k].file_bytes(), files[k]["bytes"].get<uint64_t>()) << k;
        }
    }
}

// The old attn_kv_b layout of R1: the README's figures for it.
TEST(Synth, LegacyR1Layout) {
    Spec spec = spec_of("r1-671b");
    Overrides o;
    o.legacy_mla = true;
    apply(spec, o);
    const std::vector<TensorPlan> tensors = plan_tensors(spec);
    int kv_b_q6 = 0, kv_b = 0;
    uint64_t data = 0, q6_extra = 0;
    for (const TensorPlan& t : tensors) {
        data += t.bytes;
        EXPECT_EQ(t.name.find("attn_k_b"), std::string::npos);
        if (t.name.find("attn_kv_b") == std::string::npos) continue;
        ++kv_b;
        EXPECT_EQ(t.ne, (std::vector<int64_t>{512, 128 * (128 + 128)}));
        if (t.type == Type::Q6_K) {
            ++kv_b_q6;
            q6_extra += t.n_rows() *
                        (quant::row_bytes(Type::Q6_K, 512) - quant::row_bytes(Type::Q4_K, 512));
        }
    }
    EXPECT_EQ(kv_b, 61);
    // "This llama.cpp would put an old-style attn_kv_b in Q6_K in 30 of 61 layers", and with
    // every kv_b in Q4_K the data is 404,424,884,224 bytes (the published files).
    EXPECT_EQ(kv_b_q6, 30);
    EXPECT_EQ(data - q6_extra, 404'424'884'224u);
}

TEST(Synth, ShapeOnlyFilesAreSparse) {
    test::TempDir dir;
    const Written r1 = write_model(spec_of("r1-671b"), (dir / "r1.gguf").string());
    ASSERT_EQ(r1.paths.size(), 9u);
    EXPECT_EQ(r1.paths[0], (dir / "r1-00001-of-00009.gguf").string());
    uint64_t on_disk = 0, sizes = 0;
    for (const std::string& p : r1.paths) {
        on_disk += disk_bytes(p);
        sizes += std::filesystem::file_size(p);
    }
    EXPECT_EQ(sizes, r1.file_bytes);
    EXPECT_GT(r1.file_bytes, uint64_t{370} << 30);  // 376.7 GiB
    EXPECT_LT(on_disk, uint64_t{4} << 20);          // headers only

    const gguf::File file = gguf::File::open(r1.paths[0]);
    EXPECT_EQ(file.shards().size(), 9u);
    EXPECT_EQ(file.tensors().size(), 1086u);
    EXPECT_EQ(file.file_bytes(), r1.file_bytes);
    EXPECT_TRUE(Model::validate(file).empty());

    const Written lite = write_model(spec_of("v2-lite"), (dir / "lite.gguf").string());
    ASSERT_EQ(lite.paths.size(), 1u);
    EXPECT_GT(std::filesystem::file_size(lite.paths[0]), uint64_t{10'000'000'000});
    EXPECT_LT(disk_bytes(lite.paths[0]), uint64_t{1} << 20);
}

// ---------------------------------------------------------------------------------------------
// Tiny presets follow the golden files' conventions.

struct GoldenPair {
    const char* preset;
    Arch arch;
    const char* golden;
};

// Keys in the same order with the same value types and values (names aside), and the same
// tensor names, types, shapes and order.
void expect_like_golden(const gguf::File& file, const nlohmann::ordered_json& golden) {
    using OJson = nlohmann::ordered_json;
    const OJson& md = golden["metadata"];
    const OJson& md_types = golden["metadata_types"];
    ASSERT_EQ(file.metadata().size(), md.size());
    size_t i = 0;
    for (auto it = md.begin(); it != md.end(); ++it, ++i) {
        const gguf::KeyValue& kv = file.metadata()[i];
        ASSERT_EQ(std::string(kv.key), it.key()) << i;
        EXPECT_EQ(gguf::type_name(kv.value.type), md_types[it.key()].get<std::string>())
            << it.key();
        if (it.key() == "general.name" || it.key() == "general.size_label") continue;
        const OJson& want = it.value();
        switch (kv.value.type) {
            case gguf::ValueType::STRING:
                EXPECT_EQ(std::string(kv.value.s), want.get<std::string>()) << it.key();
                break;
            case gguf::ValueType::ARRAY:
                EXPECT_EQ(gguf::type_name(kv.value.elem), want["array_of"].get<std::string>());
                EXPECT_EQ(kv.value.count, want["len"].get<uint64_t>()) << it.key();
                break;
            case gguf::ValueType::FLOAT32:
                EXPECT_EQ(kv.value.f, want.get<double>()) << it.key();
                break;
            case gguf::ValueType::BOOL:
                EXPECT_EQ(kv.value.u != 0, want.get<bool>()) << it.key();
                break;
            default:
                EXPECT_EQ(kv.value.u, want.get<uint64_t>()) << it.key();
        }
    }
    ASSERT_EQ(file.tensors().size(), golden["tensors"].size());
    for (size_t k = 0; k < file.tensors().size(); ++k) {
        const gguf::Tensor& t = file.tensors()[k];
        const OJson& want = golden["tensors"][k];
        EXPECT_EQ(std::string(t.name), want["name"].get<std::string>()) << k;
        EXPECT_EQ(quant::type_name(t.type), want["type"].get<std::string>()) << t.name;
        EXPECT_EQ(shape_of(t), want["shape"].get<std::vector<int64_t>>()) << t.name;
    }
}

TEST(Synth, TinyPresetsFollowGoldenConventions) {
    STRATA_REQUIRE_GOLDEN();
    const auto manifest = load_ordered(test::golden_dir() / "manifest.json");
    const GoldenPair pairs[] = {
        {"tiny", Arch::DeepSeek2, "deepseek2.f32.gguf"},
        {"tiny", Arch::Llama, "llama.f32.gguf"},
        {"tiny", Arch::Qwen2, "qwen2.f32.gguf"},
        {"tiny-lite", Arch::DeepSeek2, "deepseek2-lite.f32.gguf"},
        {"tiny-legacy", Arch::DeepSeek2, "deepseek2-legacy.f32.gguf"},
    };
    test::TempDir dir;
    for (const GoldenPair& p : pairs) {
        SCOPED_TRACE(p.golden);
        const std::string path = (dir / p.golden).string();
        const Written w = write_model(spec_of(p.preset, p.arch), path);
        EXPECT_LT(w.file_bytes, uint64_t{16} << 20);  // a few MB
        const gguf::File file = gguf::File::open(path);
        expect_like_golden(file, manifest_model(manifest, p.golden));
        EXPECT_EQ(Model::validate(file), std::vector<std::string>{});
        // The chat template is the family's own string.
        const gguf::File golden =
            gguf::File::open((test::golden_dir() / "models" / p.golden).string());
        EXPECT_EQ(file.get_str("tokenizer.chat_template"),
                  golden.get_str("tokenizer.chat_template"));
    }
}

// The same recipe gives llama-quantize's types for golden-like shapes, in its order.
TEST(Synth, QuantizedTinyPresetsMatchGoldenMixes) {
    STRATA_REQUIRE_GOLDEN();
    for (Type t : {Type::Q4_K, Type::Q6_K, Type::Q5_0})
        ASSERT_TRUE(can_quantize(t)) << quant::type_name(t) << " has no quantizer";
    const auto manifest = load_ordered(test::golden_dir() / "manifest.json");
    const GoldenPair pairs[] = {
        {"tiny", Arch::DeepSeek2, "deepseek2.Q4_K_M.gguf"},
        {"tiny", Arch::Llama, "llama.Q4_K_M.gguf"},
        {"tiny", Arch::Qwen2, "qwen2.Q4_K_M.gguf"},
        {"tiny-lite", Arch::DeepSeek2, "deepseek2-lite.Q4_K_M.gguf"},
        {"tiny", Arch::DeepSeek2, "deepseek2.Q8_0.gguf"},
    };
    test::TempDir dir;
    for (const GoldenPair& p : pairs) {
        SCOPED_TRACE(p.golden);
        Spec spec = spec_of(p.preset, p.arch);
        spec.target = std::string(p.golden).find("Q8_0") != std::string::npos
                          ? recipe::Target::pure(Type::Q8_0)
                          : recipe::Target::of_mix(recipe::Mix::Q4_K_M);
        const std::string path = (dir / p.golden).string();
        write_model(spec, path);
        const gguf::File file = gguf::File::open(path);
        expect_like_golden(file, manifest_model(manifest, p.golden));
        EXPECT_EQ(Model::validate(file), std::vector<std::string>{});
    }
}

// ---------------------------------------------------------------------------------------------
// Overrides make other shapes, and every one of them loads.

TEST(Synth, OverridesMakeOtherShapes) {
    test::TempDir dir;
    {
        Spec s = spec_of("tiny", Arch::DeepSeek2);
        Overrides o;
        o.layers = 3;
        o.embd = 192;
        o.heads = 6;
        o.q_lora = 0;
        o.kv_lora = 64;
        o.qk_nope = 32;
        o.qk_rope = 16;
        o.v_head = 48;
        o.experts = 12;
        o.experts_used = 3;
        o.groups = 3;
        o.groups_used = 2;
        o.shared_experts = 2;
        o.ff_exp = 96;
        o.dense_layers = 1;
        apply(s, o);
        const std::string path = (dir / "ds.gguf").string();
        write_model(s, path);
        const gguf::File f = gguf::File::open(path);
        EXPECT_EQ(Model::validate(f), std::vector<std::string>{});
        EXPECT_EQ(shape_of(f.tensor("blk.2.ffn_gate_exps.weight")),
                  (std::vector<int64_t>{192, 96, 12}));
        EXPECT_EQ(shape_of(f.tensor("blk.2.ffn_down_shexp.weight")),
                  (std::vector<int64_t>{192, 192}));
        EXPECT_EQ(shape_of(f.tensor("blk.1.attn_q.weight")), (std::vector<int64_t>{192, 6 * 48}));
        EXPECT_EQ(shape_of(f.tensor("blk.1.attn_k_b.weight")), (std::vector<int64_t>{32, 64, 6}));
        EXPECT_EQ(shape_of(f.tensor("blk.1.attn_v_b.weight")), (std::vector<int64_t>{64, 48, 6}));
        EXPECT_EQ(shape_of(f.tensor("blk.0.attn_output.weight")),
                  (std::vector<int64_t>{6 * 48, 192}));
        EXPECT_EQ(f.find_tensor("blk.0.ffn_gate_inp.weight"), nullptr);
        EXPECT_EQ(f.get_u32("deepseek2.attention.key_length"), 64u + 16u);
        EXPECT_EQ(f.get_u32("deepseek2.attention.key_length_mla"), 32u + 16u);
        EXPECT_EQ(f.get_u32("deepseek2.expert_group_count"), 3u);
    }
    {
        // Llama with heads that do not split n_embd evenly, tied embeddings, a larger vocab.
        Spec s = spec_of("tiny", Arch::Llama);
        Overrides o;
        o.embd = 320;
        o.heads = 4;
        o.heads_kv = 1;
        o.head_dim = 48;
        o.vocab = 1000;
        o.tied = true;
        apply(s, o);
        const std::string path = (dir / "llama.gguf").string();
        write_model(s, path);
        const gguf::File f = gguf::File::open(path);
        EXPECT_EQ(Model::validate(f), std::vector<std::string>{});
        EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
        EXPECT_EQ(shape_of(f.tensor("blk.1.attn_k.weight")), (std::vector<int64_t>{320, 48}));
        EXPECT_EQ(shape_of(f.tensor("rope_freqs.weight")), (std::vector<int64_t>{24}));
        EXPECT_EQ(f.get_u32("llama.attention.key_length"), 48u);
        EXPECT_EQ(f.get_str_array("tokenizer.ggml.tokens").size(), 1000u);
    }
    {
        Spec s = spec_of("tiny", Arch::Qwen2);
        Overrides o;
        o.layers = 3;
        o.tied = false;
        apply(s, o);
        const std::string path = (dir / "qwen2.gguf").string();
        write_model(s, path);
        const gguf::File f = gguf::File::open(path);
        EXPECT_EQ(Model::validate(f), std::vector<std::string>{});
        EXPECT_NE(f.find_tensor("output.weight"), nullptr);
        EXPECT_NE(f.find_tensor("blk.2.attn_v.bias"), nullptr);
    }
}

TEST(Synth, OverrideErrors) {
    auto refused = [](std::string_view preset, std::optional<Arch> arch, auto edit) {
        Spec s = spec_of(preset, arch);
        Overrides o;
        edit(o);
        EXPECT_THROW(apply(s, o), UsageError);
    };
    refused("tiny", Arch::DeepSeek2, [](Overrides& o) { o.experts_used = 9; });
    refused("tiny", Arch::DeepSeek2, [](Overrides& o) { o.experts = 6; });  // 4 groups
    refused("tiny", Arch::DeepSeek2, [](Overrides& o) { o.heads_kv = 2; });
    refused("tiny", Arch::DeepSeek2, [](Overrides& o) { o.qk_rope = 15; });
    refused("tiny", Arch::Llama, [](Overrides& o) { o.experts = 8; });
    refused("tiny", Arch::Llama, [](Overrides& o) { o.heads_kv = 3; });
    refused("tiny", Arch::Llama, [](Overrides& o) { o.embd = 250; });  // not 4 equal heads
    refused("tiny", Arch::Qwen2, [](Overrides& o) { o.vocab = 100; });
    refused("tiny", Arch::Llama, [](Overrides& o) { o.layers = 0; });
    refused("r1-671b", std::nullopt, [](Overrides& o) { o.layers = 4; });
    EXPECT_THROW(make_spec("tiny", std::nullopt), UsageError);
    EXPECT_THROW(make_spec("huge", Arch::Llama), UsageError);
    EXPECT_THROW(make_spec("r1-671b", Arch::Llama), UsageError);
    EXPECT_THROW(make_spec("tiny-lite", Arch::Qwen2), UsageError);
}

// ---------------------------------------------------------------------------------------------
// Weights: deterministic, independent of type and layout, at the documented scales.

TEST(Synth, SameSeedSameBytes) {
    test::TempDir dir;
    Spec s = spec_of("tiny", Arch::Llama);
    s.seed = 7;
    write_model(s, (dir / "a.gguf").string());
    write_model(s, (dir / "b.gguf").string());
    EXPECT_EQ(test::read_file(dir / "a.gguf"), test::read_file(dir / "b.gguf"));
    s.seed = 8;
    write_model(s, (dir / "c.gguf").string());
    const gguf::File a = gguf::File::open((dir / "a.gguf").string());
    const gguf::File c = gguf::File::open((dir / "c.gguf").string());
    EXPECT_NE(read_f32(a.tensor("blk.0.ffn_up.weight")), read_f32(c.tensor("blk.0.ffn_up.weight")));
}

TEST(Synth, ValuesDoNotDependOnTheType) {
    test::TempDir dir;
    Spec s = spec_of("tiny", Arch::Qwen2);
    s.seed = 3;
    write_model(s, (dir / "f32.gguf").string());
    s.target = recipe::Target::pure(Type::F16);
    write_model(s, (dir / "f16.gguf").string());
    const gguf::File f32 = gguf::File::open((dir / "f32.gguf").string());
    const gguf::File f16 = gguf::File::open((dir / "f16.gguf").string());
    for (const char* name : {"token_embd.weight", "blk.0.ffn_down.weight", "blk.0.attn_q.weight"}) {
        const std::vector<float> want = read_f32(f32.tensor(name));
        const gguf::Tensor& t = f16.tensor(name);
        ASSERT_EQ(t.type, Type::F16);
        const auto* h = reinterpret_cast<const uint16_t*>(t.data);
        for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(h[i], fp32_to_fp16(want[i])) << name << " " << i;
    }
    EXPECT_EQ(f16.tensor("blk.0.attn_norm.weight").type, Type::F32);
}

// attn_k_b / attn_v_b are the layer's attn_kv_b split as the converter splits it, so the legacy
// and the split files of one seed hold the same model.
TEST(Synth, MlaSplitIsAViewOfKvB) {
    test::TempDir dir;
    Spec split = spec_of("tiny-lite");
    Spec legacy = spec_of("tiny-legacy");
    split.seed = legacy.seed = 11;
    write_model(split, (dir / "split.gguf").string());
    write_model(legacy, (dir / "legacy.gguf").string());
    const gguf::File fs = gguf::File::open((dir / "split.gguf").string());
    const gguf::File fl = gguf::File::open((dir / "legacy.gguf").string());
    const int64_t n_head = 4, nope = 32, v = 32, kv_lora = 128;
    for (int il = 0; il < 2; ++il) {
        const std::vector<float> kv_b =
            read_f32(fl.tensor(fmt::format("blk.{}.attn_kv_b.weight", il)));
        const std::vector<float> k_b =
            read_f32(fs.tensor(fmt::format("blk.{}.attn_k_b.weight", il)));
        const std::vector<float> v_b =
            read_f32(fs.tensor(fmt::format("blk.{}.attn_v_b.weight", il)));
        // kv_b row (h·(nope+v) + j) is head h's j-th K row (j < nope) or V row.
        auto kv = [&](int64_t h, int64_t row, int64_t c) {
            return kv_b[((h * (nope + v)) + row) * kv_lora + c];
        };
        for (int64_t h = 0; h < n_head; ++h) {
            for (int64_t c = 0; c < kv_lora; ++c) {
                for (int64_t j = 0; j < nope; ++j)
                    ASSERT_EQ(k_b[(h * kv_lora + c) * nope + j], kv(h, j, c));
                for (int64_t i = 0; i < v; ++i)
                    ASSERT_EQ(v_b[(h * v + i) * kv_lora + c], kv(h, nope + i, c));
            }
        }
    }
    for (const gguf::Tensor& t : fs.tensors()) {
        if (t.name.find("attn_k_b") != std::string_view::npos ||
            t.name.find("attn_v_b") != std::string_view::npos)
            continue;
        EXPECT_EQ(read_f32(t), read_f32(fl.tensor(t.name))) << t.name;
    }
}

struct Stats {
    double mean = 0, std = 0, max_abs = 0;
    bool finite = true;
};
Stats stats_of(const std::vector<float>& v) {
    Stats s;
    for (float x : v) {
        s.finite = s.finite && std::isfinite(x);
        s.mean += x;
    }
    s.mean /= static_cast<double>(v.size());
    for (float x : v) {
        s.std += (x - s.mean) * (x - s.mean);
        s.max_abs = std::max(s.max_abs, std::abs(static_cast<double>(x)));
    }
    s.std = std::sqrt(s.std / static_cast<double>(v.size()));
    return s;
}

// Scales by fan-in: unit-gain projections into the residual stream and the FFN, 1.5 for the
// Q / K / latent projections, 3 for the output, norms near one.
TEST(Synth, WeightScales) {
    test::TempDir dir;
    Spec s = spec_of("tiny", Arch::DeepSeek2);
    Overrides o;
    o.embd = 512;
    apply(s, o);
    write_model(s, (dir / "ds.gguf").string());
    const gguf::File f = gguf::File::open((dir / "ds.gguf").string());
    struct Want {
        const char* name;
        double gain;  // std · sqrt(fan_in)
        int64_t fan_in;
    };
    const Want wants[] = {
        {"token_embd.weight", 1.0, 1},
        {"output.weight", 3.0, 512},
        {"blk.0.attn_q_a.weight", 1.0, 512},
        {"blk.0.attn_q_b.weight", 1.5, 256},
        {"blk.0.attn_kv_a_mqa.weight", 1.5, 512},
        {"blk.1.attn_k_b.weight", 1.5, 256},
        {"blk.1.attn_output.weight", 1.0, 256},
        {"blk.0.ffn_down.weight", 1.0, 256},
        {"blk.1.ffn_gate_exps.weight", 1.0, 512},
        {"blk.1.ffn_down_exps.weight", 1.0, 256},
        {"blk.1.ffn_gate_inp.weight", 2.0, 512},
    };
    for (const Want& w : wants) {
        const Stats st = stats_of(read_f32(f.tensor(w.name)));
        const double want_std = w.gain / std::sqrt(static_cast<double>(w.fan_in));
        EXPECT_TRUE(st.finite) << w.name;
        EXPECT_NEAR(st.std, want_std, 0.05 * want_std) << w.name;
        EXPECT_NEAR(st.mean, 0.0, 0.1 * want_std) << w.name;
        // Irwin–Hall(4) is bounded at sqrt(3)·2 standard deviations.
        EXPECT_LE(st.max_abs, 3.4642 * want_std) << w.name;
    }
    for (const char* name :
         {"blk.0.attn_norm.weight", "blk.1.ffn_norm.weight", "output_norm.weight"}) {
        const Stats st = stats_of(read_f32(f.tensor(name)));
        EXPECT_NEAR(st.mean, 1.0, 0.03) << name;
        EXPECT_NEAR(st.std, 0.1, 0.02) << name;
    }
}

// rope_freqs.weight is computed as the converter computes it (checked against the golden file).
TEST(Synth, Llama3RopeFactors) {
    STRATA_REQUIRE_GOLDEN();
    const gguf::File golden =
        gguf::File::open((test::golden_dir() / "models" / "llama.f32.gguf").string());
    const std::vector<float> want = read_f32(golden.tensor("rope_freqs.weight"));
    const std::vector<float> got = llama3_rope_factors(Llama3Rope{}, 64, 500000.0f);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], want[i]) << i;
    // The ends of the ramp: no change at high frequencies, the full factor at low ones.
    EXPECT_EQ(got.front(), 1.0f);
    EXPECT_EQ(got.back(), 8.0f);
}

// ---------------------------------------------------------------------------------------------
// Tokenizers.

TEST(SynthVocab, ByteTokensInGpt2Order) {
    const std::vector<std::string> bytes = byte_tokens();
    ASSERT_EQ(bytes.size(), 256u);
    EXPECT_EQ(std::set<std::string>(bytes.begin(), bytes.end()).size(), 256u);
    EXPECT_EQ(bytes[0], "!");
    EXPECT_EQ(bytes[93], "~");         // 0x21..0x7E: 94 printable ASCII bytes
    EXPECT_EQ(bytes[94], "\xC2\xA1");  // ¡ (0xA1)
    // 188 printable bytes, then the others from U+0100: byte 0 is Ā, the space (0x20) is Ġ.
    EXPECT_EQ(bytes[188], "\xC4\x80");
    EXPECT_EQ(bytes[188 + 32], "\xC4\xA0");
}

TEST(SynthVocab, FamiliesAndSizes) {
    for (Arch arch : {Arch::DeepSeek2, Arch::Llama, Arch::Qwen2}) {
        for (int64_t n : {min_vocab(arch), int64_t{512}, int64_t{3000}}) {
            SCOPED_TRACE(fmt::format("{} {}", arch_name(arch), n));
            const Vocab v = make_vocab(arch, n);
            ASSERT_EQ(static_cast<int64_t>(v.tokens.size()), n);
            ASSERT_EQ(v.types.size(), v.tokens.size());
            EXPECT_EQ(std::set<std::string>(v.tokens.begin(), v.tokens.end()).size(),
                      v.tokens.size());
            std::map<std::string, size_t> id;
            for (size_t i = 0; i < v.tokens.size(); ++i) id[v.tokens[i]] = i;
            // Every merge joins two tokens into a token that comes after both.
            for (const std::string& m : v.merges) {
                const size_t sp = m.find(' ');
                ASSERT_NE(sp, std::string::npos) << m;
                const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
                ASSERT_TRUE(id.count(a) && id.count(b) && id.count(a + b)) << m;
                EXPECT_GT(id[a + b], std::max(id[a], id[b])) << m;
            }
            EXPECT_EQ(v.types[static_cast<size_t>(v.bos)], 3);
            EXPECT_EQ(v.types[static_cast<size_t>(v.eos)], 3);
            for (size_t i = 0; i < v.tokens.size(); ++i) {
                if (v.tokens[i].starts_with("[PAD")) {
                    EXPECT_EQ(v.types[i], 5) << i;
                }
            }
        }
    }
    const Vocab ds = make_vocab(Arch::DeepSeek2, 600);
    EXPECT_EQ(ds.tokens[ds.bos], "<｜begin▁of▁sentence｜>");
    EXPECT_EQ(ds.bos, 0);
    EXPECT_EQ(ds.eos, 1);
    EXPECT_EQ(ds.pad, std::optional<int64_t>(1));
    EXPECT_EQ(ds.tokens[599], "</think>");
    EXPECT_EQ(ds.types[599], 4);  // USER_DEFINED, as the converter types <think>
    const Vocab llama = make_vocab(Arch::Llama, 600);
    EXPECT_EQ(llama.tokens[llama.eos], "<|eot_id|>");
    EXPECT_TRUE(llama.add_bos);
    const Vocab qwen = make_vocab(Arch::Qwen2, 600);
    EXPECT_EQ(qwen.tokens[qwen.eos], "<|im_end|>");
    EXPECT_EQ(qwen.pad, std::optional<int64_t>(qwen.bos));
    EXPECT_FALSE(qwen.add_bos);
    EXPECT_THROW(make_vocab(Arch::Llama, min_vocab(Arch::Llama) - 1), UsageError);
}

TEST(SynthVocab, MergesFavourFrequentPairs) {
    // "aaab aab": the pair (a, a) occurs three times, (a, b) twice.
    const std::vector<std::string> m = learn_merges("aaab aab", 1);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0], "a a");
    // The space is a byte-level Ġ glued to the following word: "a b" (twice) first, then the
    // second word's space joins it.
    const std::vector<std::string> all = learn_merges("ab ab", 10);
    EXPECT_EQ(all, (std::vector<std::string>{"a b", "Ġ ab"}));
}

// ---------------------------------------------------------------------------------------------
// The command line.

TEST(SynthCli, WritesAndReportsErrors) {
    test::TempDir dir;
    const std::string out = (dir / "m.gguf").string();
    auto ok = test::run_strata("synth --arch llama --preset tiny --seed 5 -o " + out);
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_TRUE(std::filesystem::exists(out));
    EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));

    struct Bad {
        std::string args;
        int status;
        std::string says;
    };
    const Bad bad[] = {
        {"synth --arch llama --preset huge -o " + out, 2, "unknown preset 'huge'"},
        {"synth --arch gpt2 --preset tiny -o " + out, 2, "unknown --arch 'gpt2'"},
        {"synth --arch llama --preset tiny --type Q9_K -o " + out, 2, "unknown --type 'Q9_K'"},
        {"synth --arch llama --preset r1-671b -o " + out, 2, "not a llama model"},
        {"synth --preset v2-lite --layers 3 -o " + out, 2, "--layers"},
        {"synth --arch deepseek2 --preset tiny --experts-used 20 -o " + out, 2, "--experts-used"},
        {"synth --arch llama --preset tiny", 2, "-o OUT.gguf is required"},
        {"synth --arch llama --preset tiny -o /nonexistent-dir/m.gguf", 1,
         "/nonexistent-dir/m.gguf"},
    };
    for (const Bad& b : bad) {
        const auto r = test::run_strata(b.args);
        EXPECT_EQ(r.status, b.status) << b.args << "\n" << r.err;
        EXPECT_TRUE(r.err.starts_with("strata: error: ")) << r.err;
        EXPECT_NE(r.err.find(b.says), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("strata: error:", 1), std::string::npos) << r.err;
    }
}

// Every preset, written by the command line, passes `strata inspect` (bench and big40 as shape
// only: their data takes seconds to minutes to write).
TEST(SynthCli, EveryPresetPassesInspect) {
    test::TempDir dir;
    int n = 0;
    for (const PresetInfo& p : presets()) {
        const std::string name = fmt::format("{}-{}", p.name, arch_name(p.arch));
        SCOPED_TRACE(name);
        const std::string out = (dir / (name + ".gguf")).string();
        std::string args =
            fmt::format("synth --arch {} --preset {} -o {}", arch_name(p.arch), p.name, out);
        if (p.name == "bench" || p.name == "big40") args += " --shape-only";
        const auto w = test::run_strata(args);
        ASSERT_EQ(w.status, 0) << w.err;
        const std::string first =
            p.name == "r1-671b" ? (dir / (name + "-00001-of-00009.gguf")).string() : out;
        const auto r = test::run_strata("inspect --json " + first);
        ASSERT_EQ(r.status, 0) << r.err;
        const Json j = Json::parse(r.out);
        EXPECT_EQ(j["valid"], true) << j["problems"];
        EXPECT_EQ(j["arch"], std::string(arch_name(p.arch)));
        ++n;
    }
    EXPECT_EQ(n, 17);
}

TEST(SynthCli, SplitAndShapeOnlyOptions) {
    test::TempDir dir;
    const std::string out = (dir / "ds.gguf").string();
    const auto w =
        test::run_strata("synth --arch deepseek2 --preset tiny --split-max-size 3M -o " + out);
    ASSERT_EQ(w.status, 0) << w.err;
    // 11.8 MiB of tensors in files of at most 3·10⁶ bytes of data: at least four files.
    std::string first;
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
        if (e.path().filename().string().starts_with("ds-00001-of-")) first = e.path().string();
    ASSERT_FALSE(first.empty()) << w.out;
    const gguf::File f = gguf::File::open(first);
    EXPECT_GE(f.shards().size(), 4u);
    EXPECT_EQ(f.tensors().size(), 34u);
    EXPECT_TRUE(Model::validate(f).empty());
    for (const gguf::Shard& s : f.shards()) EXPECT_LE(s.file_bytes - s.data_offset, 3'000'000u);

    const std::string sparse = (dir / "sparse.gguf").string();
    const auto s = test::run_strata("synth --arch llama --preset bench --shape-only -o " + sparse);
    ASSERT_EQ(s.status, 0) << s.err;
    EXPECT_GT(std::filesystem::file_size(sparse), uint64_t{500} << 20);
    EXPECT_LT(disk_bytes(sparse), uint64_t{1} << 20);
}

// Random weights keep activations sane through the layers: the runtime's logits of synthesized
// models of several shapes are finite, spread out, and softmax is not saturated.
TEST(SynthCli, ActivationsStaySane) {
    test::TempDir dir;
    const char* models[] = {
        "--arch deepseek2 --preset tiny --layers 8 --dense-layers 2 --seed 3",
        "--arch llama --preset tiny --layers 6 --embd 384 --heads 6 --heads-kv 2 --seed 4",
        "--arch qwen2 --preset tiny --layers 4 --untied --seed 5",
        "--arch deepseek2 --preset tiny-legacy --layers 5 --experts 8 --seed 6",
    };
    const std::string tokens = "--tokens 0,5,9,300,301,302,17,45,99,100,260,261,262,263,40,41";
    int i = 0;
    for (const char* model : models) {
        SCOPED_TRACE(model);
        const std::string path = (dir / fmt::format("m{}.gguf", i)).string();
        const std::string logits = (dir / fmt::format("m{}.f32", i++)).string();
        const auto w = test::run_strata(fmt::format("synth {} -o {}", model, path));
        ASSERT_EQ(w.status, 0) << w.err;
        const auto e =
            test::run_strata(fmt::format("eval -m {} {} --out {}", path, tokens, logits));
        ASSERT_EQ(e.status, 0) << e.err;
        const std::string raw = test::read_file(logits);
        const size_t n_vocab = 512, n_pos = 16;
        ASSERT_EQ(raw.size(), n_vocab * n_pos * sizeof(float));
        std::vector<float> v(n_vocab * n_pos);
        std::memcpy(v.data(), raw.data(), raw.size());
        double mean_top = 0;
        for (size_t p = 0; p < n_pos; ++p) {
            const std::vector<float> row(v.begin() + p * n_vocab, v.begin() + (p + 1) * n_vocab);
            const Stats st = stats_of(row);
            ASSERT_TRUE(st.finite) << p;
            EXPECT_GT(st.std, 1.0) << p;
            EXPECT_LT(st.std, 6.0) << p;
            const float top = *std::max_element(row.begin(), row.end());
            double z = 0;
            for (float x : row) z += std::exp(static_cast<double>(x - top));
            EXPECT_LT(1.0 / z, 0.999) << p;
            mean_top += 1.0 / z / n_pos;
        }
        EXPECT_LT(mean_top, 0.9);
    }
}

}  // namespace
}  // namespace strata::synth
