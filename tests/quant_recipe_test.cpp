// The quantization recipe against what llama-quantize wrote (golden models, tables of real
// models) and against the rules worked out by hand on shapes the fixtures do not have.
#include "synth/quant_recipe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace strata {
namespace {

using quant::Type;
using Json = nlohmann::json;

Json load_json(const std::filesystem::path& path) {
    std::ifstream in(path);
    return Json::parse(in);
}

Type type_named(const std::string& name) {
    const auto t = quant::type_from_name(name);
    EXPECT_TRUE(t.has_value()) << name;
    return t.value_or(Type::F32);
}

const Json& manifest_model(const Json& manifest, const std::string& file) {
    for (const Json& m : manifest["models"])
        if (m["file"] == "models/" + file) return m;
    throw std::runtime_error("no such golden model " + file);
}

// The facts the rules read, taken from a golden model's manifest entry.
recipe::ModelFacts facts_of(const Json& model) {
    const Json& md = model["metadata"];
    const std::string arch = md["general.architecture"];
    recipe::ModelFacts f;
    f.arch = arch == "llama" ? Arch::Llama : arch == "qwen2" ? Arch::Qwen2 : Arch::DeepSeek2;
    f.n_layer = md[arch + ".block_count"];
    f.n_head = md[arch + ".attention.head_count"];
    f.n_head_kv = md.value(arch + ".attention.head_count_kv", f.n_head);
    f.n_expert = md.value(arch + ".expert_count", 0);
    f.has_output = false;
    for (const Json& t : model["tensors"])
        if (t["name"] == "output.weight") f.has_output = true;
    return f;
}

// Every tensor of `model` gets the type `target` predicts.
void expect_types(const Json& model, const recipe::Target& target) {
    const recipe::ModelFacts facts = facts_of(model);
    for (const Json& t : model["tensors"]) {
        const std::vector<int64_t> ne = t["shape"];
        const recipe::Choice c =
            recipe::choose_type(facts, target, t["name"].get<std::string>(), ne);
        EXPECT_EQ(quant::type_name(c.type), t["type"].get<std::string>())
            << model["file"] << " " << t["name"];
    }
}

TEST(QuantRecipe, GoldenQ4KMModels) {
    STRATA_REQUIRE_GOLDEN();
    const Json manifest = load_json(test::golden_dir() / "manifest.json");
    for (const char* file : {"deepseek2.Q4_K_M.gguf", "llama.Q4_K_M.gguf", "qwen2.Q4_K_M.gguf",
                             "deepseek2-lite.Q4_K_M.gguf"}) {
        expect_types(manifest_model(manifest, file), recipe::Target::of_mix(recipe::Mix::Q4_K_M));
    }
}

TEST(QuantRecipe, GoldenPureAndQ8Models) {
    STRATA_REQUIRE_GOLDEN();
    const Json manifest = load_json(test::golden_dir() / "manifest.json");
    for (const char* type : {"F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K",
                             "Q4_K", "Q5_K", "Q6_K"}) {
        const Json& m = manifest_model(manifest, std::string("llama.pure-") + type + ".gguf");
        expect_types(m, recipe::Target::pure(type_named(type)));
        EXPECT_EQ(recipe::file_type(recipe::Target::pure(type_named(type))),
                  m["metadata"]["general.file_type"].get<uint32_t>())
            << type;
    }
    for (const char* file : {"deepseek2.Q8_0.gguf", "qwen2.Q8_0.gguf"})
        expect_types(manifest_model(manifest, file), recipe::Target::pure(Type::Q8_0));
}

// The tables of real models: every tensor's type, the fallback warnings llama-quantize printed,
// and for R1 the totals of two other mixes.
TEST(QuantRecipe, TablesOfRealModels) {
    STRATA_REQUIRE_GOLDEN();
    int checked = 0;
    for (const auto& entry : std::filesystem::directory_iterator(test::golden_dir() / "tables")) {
        const Json table = load_json(entry.path());
        const Json& cfg = table["source_config"];
        recipe::ModelFacts f;
        const std::string arch = cfg["arch"];
        f.arch = arch == "llama" ? Arch::Llama : arch == "qwen2" ? Arch::Qwen2 : Arch::DeepSeek2;
        f.n_layer = cfg["L"];
        f.n_head = cfg["H"];
        // MLA files store one latent KV head.
        f.n_head_kv = cfg.value("HKV", int64_t{1});
        f.n_expert = cfg.value("n_exp", int64_t{0});
        f.has_output = !cfg.value("tied", false);

        std::vector<std::string> fallbacks;
        std::map<std::string, int64_t> q2k_types, q8_types;
        uint64_t q2k_bytes = 0, q8_bytes = 0;
        for (const Json& t : table["tensors"]) {
            const std::string name = t["name"];
            const std::vector<int64_t> ne = t["shape"];
            const recipe::Choice c =
                recipe::choose_type(f, recipe::Target::of_mix(recipe::Mix::Q4_K_M), name, ne);
            EXPECT_EQ(quant::type_name(c.type), t["type"].get<std::string>())
                << table["model"] << " " << name;
            if (c.fallback()) fallbacks.push_back(name);
            int64_t rows = 1;
            for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
            const Type q2k =
                recipe::choose_type(f, recipe::Target::of_mix(recipe::Mix::Q2_K), name, ne).type;
            const Type q8 = recipe::choose_type(f, recipe::Target::pure(Type::Q8_0), name, ne).type;
            ++q2k_types[std::string(quant::type_name(q2k))];
            ++q8_types[std::string(quant::type_name(q8))];
            q2k_bytes += rows * quant::row_bytes(q2k, ne[0]);
            q8_bytes += rows * quant::row_bytes(q8, ne[0]);
        }
        // "warning: blk.0.attn_k_b.weight   - ncols ..." names the tensor that fell back.
        std::vector<std::string> warned;
        for (const Json& w : table["fallbacks"]) {
            const std::string s = w;
            const size_t at = s.find("warning: ") + 9;
            warned.push_back(s.substr(at, s.find(' ', at) - at));
        }
        EXPECT_EQ(fallbacks, warned) << table["model"];
        if (table.contains("other_quants")) {
            const Json& q = table["other_quants"];
            EXPECT_EQ(Json(q2k_types), q["Q2_K"]["types"]);
            EXPECT_EQ(q2k_bytes, q["Q2_K"]["tensor_data_bytes"].get<uint64_t>());
            EXPECT_EQ(Json(q8_types), q["Q8_0"]["types"]);
            EXPECT_EQ(q8_bytes, q["Q8_0"]["tensor_data_bytes"].get<uint64_t>());
        }
        ++checked;
    }
    EXPECT_EQ(checked, 8);
}

recipe::Choice pick(const recipe::ModelFacts& f, recipe::Mix mix, const std::string& name,
                    std::vector<int64_t> ne) {
    return recipe::choose_type(f, recipe::Target::of_mix(mix), name, ne);
}

// llama.cpp gives more bits to the first and last eighth of the layers and to every third layer
// between: for 16 layers, i < 2, i >= 14, or (i - 2) % 3 == 2, i.e. 0, 1, 4, 7, 10, 13, 14, 15.
TEST(QuantRecipe, MoreBitsLayerPattern) {
    recipe::ModelFacts f{Arch::Llama, 16, 32, 8, 0, true};
    const std::vector<int64_t> more{0, 1, 4, 7, 10, 13, 14, 15};
    for (int64_t il = 0; il < 16; ++il) {
        const bool expect_more = std::count(more.begin(), more.end(), il) > 0;
        const Type want = expect_more ? Type::Q6_K : Type::Q4_K;
        EXPECT_EQ(
            pick(f, recipe::Mix::Q4_K_M, fmt::format("blk.{}.attn_v.weight", il), {4096, 1024})
                .type,
            want)
            << il;
        EXPECT_EQ(
            pick(f, recipe::Mix::Q4_K_M, fmt::format("blk.{}.ffn_down.weight", il), {14336, 4096})
                .type,
            want)
            << il;
        EXPECT_EQ(
            pick(f, recipe::Mix::Q4_K_M, fmt::format("blk.{}.ffn_up.weight", il), {4096, 14336})
                .type,
            Type::Q4_K);
        // Q4_K_S: Q5_K for attn_v in the first 4 layers, ffn_down in the first eighth (2).
        EXPECT_EQ(
            pick(f, recipe::Mix::Q4_K_S, fmt::format("blk.{}.attn_v.weight", il), {4096, 1024})
                .type,
            il < 4 ? Type::Q5_K : Type::Q4_K);
        EXPECT_EQ(
            pick(f, recipe::Mix::Q4_K_S, fmt::format("blk.{}.ffn_down.weight", il), {14336, 4096})
                .type,
            il < 2 ? Type::Q5_K : Type::Q4_K);
    }
}

TEST(QuantRecipe, ModelSizeAndExpertRules) {
    // 80 blocks with grouped-query attention is llama.cpp's 70B: V gets Q5_K where it had Q4_K.
    recipe::ModelFacts llama70{Arch::Llama, 80, 64, 8, 0, true};
    EXPECT_EQ(pick(llama70, recipe::Mix::Q4_K_M, "blk.20.attn_v.weight", {8192, 1024}).type,
              Type::Q5_K);
    EXPECT_EQ(pick(llama70, recipe::Mix::Q4_K_M, "blk.21.attn_v.weight", {8192, 1024}).type,
              Type::Q6_K);
    // Without GQA it is the 65B, which has no such rule.
    recipe::ModelFacts llama65{Arch::Llama, 80, 64, 64, 0, true};
    EXPECT_EQ(pick(llama65, recipe::Mix::Q4_K_M, "blk.20.attn_v.weight", {8192, 8192}).type,
              Type::Q4_K);

    // Eight experts (Mixtral's count): K and V in Q8_0, the attention output in Q5_K.
    recipe::ModelFacts moe8{Arch::Llama, 32, 32, 8, 8, true};
    EXPECT_EQ(pick(moe8, recipe::Mix::Q4_K_M, "blk.3.attn_k.weight", {4096, 1024}).type,
              Type::Q8_0);
    EXPECT_EQ(pick(moe8, recipe::Mix::Q4_K_M, "blk.3.attn_v.weight", {4096, 1024}).type,
              Type::Q8_0);
    EXPECT_EQ(pick(moe8, recipe::Mix::Q4_K_M, "blk.3.attn_output.weight", {4096, 4096}).type,
              Type::Q5_K);
    recipe::ModelFacts moe16 = moe8;
    moe16.n_expert = 16;
    EXPECT_EQ(pick(moe16, recipe::Mix::Q4_K_M, "blk.3.attn_output.weight", {4096, 4096}).type,
              Type::Q4_K);

    // The legacy MLA kv_b is treated like V; the split k_b / v_b are not.
    recipe::ModelFacts ds{Arch::DeepSeek2, 16, 16, 16, 64, true};
    EXPECT_EQ(pick(ds, recipe::Mix::Q4_K_M, "blk.0.attn_kv_b.weight", {512, 4096}).type,
              Type::Q6_K);
    EXPECT_EQ(pick(ds, recipe::Mix::Q4_K_M, "blk.2.attn_kv_b.weight", {512, 4096}).type,
              Type::Q4_K);
    EXPECT_EQ(pick(ds, recipe::Mix::Q4_K_M, "blk.0.attn_v_b.weight", {512, 128, 16}).type,
              Type::Q4_K);
    // MoE ffn_down takes its layer from the name; routed and shared experts alike.
    EXPECT_EQ(pick(ds, recipe::Mix::Q4_K_M, "blk.4.ffn_down_exps.weight", {1536, 2048, 64}).type,
              Type::Q6_K);
    EXPECT_EQ(pick(ds, recipe::Mix::Q4_K_M, "blk.5.ffn_down_shexp.weight", {1536, 2048}).type,
              Type::Q4_K);
}

TEST(QuantRecipe, TiedEmbeddingsTakeTheOutputType) {
    recipe::ModelFacts tied{Arch::Qwen2, 24, 16, 2, 0, false};
    recipe::ModelFacts untied = tied;
    untied.has_output = true;
    EXPECT_EQ(pick(tied, recipe::Mix::Q4_K_M, "token_embd.weight", {1024, 151936}).type,
              Type::Q6_K);
    EXPECT_EQ(pick(untied, recipe::Mix::Q4_K_M, "token_embd.weight", {1024, 151936}).type,
              Type::Q4_K);
    EXPECT_EQ(pick(untied, recipe::Mix::Q4_K_M, "output.weight", {1024, 151936}).type, Type::Q6_K);
    // A row that no K block fits: the output goes to Q8_0 directly (no fallback warning), while
    // an untied token_embd falls back from Q4_K like any other matrix.
    const recipe::Choice out = pick(untied, recipe::Mix::Q4_K_M, "output.weight", {896, 151936});
    EXPECT_EQ(out.type, Type::Q8_0);
    EXPECT_FALSE(out.fallback());
    EXPECT_EQ(pick(tied, recipe::Mix::Q4_K_M, "token_embd.weight", {896, 151936}).type, Type::Q8_0);
    const recipe::Choice embd =
        pick(untied, recipe::Mix::Q4_K_M, "token_embd.weight", {896, 151936});
    EXPECT_EQ(embd.type, Type::Q5_0);
    EXPECT_TRUE(embd.fallback());
}

TEST(QuantRecipe, ShapeFallbacks) {
    recipe::ModelFacts f{Arch::Llama, 4, 4, 4, 0, true};
    auto pure = [&](Type t, int64_t ne0) {
        return recipe::choose_type(f, recipe::Target::pure(t), "blk.0.ffn_up.weight",
                                   std::vector<int64_t>{ne0, 64});
    };
    EXPECT_EQ(pure(Type::Q4_K, 96).type, Type::Q5_0);
    EXPECT_EQ(pure(Type::Q5_K, 96).type, Type::Q5_1);
    EXPECT_EQ(pure(Type::Q6_K, 96).type, Type::Q8_0);
    EXPECT_EQ(pure(Type::Q2_K, 96).type, Type::Q4_0);
    EXPECT_EQ(pure(Type::Q3_K, 96).type, Type::Q4_0);
    EXPECT_TRUE(pure(Type::Q4_K, 96).fallback());
    EXPECT_EQ(pure(Type::Q4_K, 96).wanted, Type::Q4_K);
    // Not even a 32-element block fits: F16.
    EXPECT_EQ(pure(Type::Q4_K, 48).type, Type::F16);
    EXPECT_EQ(pure(Type::Q8_0, 48).type, Type::F16);
    EXPECT_EQ(pure(Type::Q8_0, 64).type, Type::Q8_0);
    // Float targets never fall back.
    EXPECT_EQ(pure(Type::BF16, 48).type, Type::BF16);
    EXPECT_FALSE(pure(Type::Q4_K, 512).fallback());
}

TEST(QuantRecipe, WhatStaysFloat) {
    recipe::ModelFacts f{Arch::DeepSeek2, 4, 16, 1, 64, true};
    const auto q4km = recipe::Target::of_mix(recipe::Mix::Q4_K_M);
    auto type_of = [&](const std::string& name, std::vector<int64_t> ne) {
        return recipe::choose_type(f, q4km, name, ne).type;
    };
    EXPECT_EQ(type_of("blk.1.attn_norm.weight", {2048}), Type::F32);
    EXPECT_EQ(type_of("blk.1.attn_kv_a_norm.weight", {512}), Type::F32);
    EXPECT_EQ(type_of("blk.1.ffn_gate_inp.weight", {2048, 64}), Type::F32);
    EXPECT_EQ(type_of("blk.1.exp_probs_b.bias", {64}), Type::F32);
    EXPECT_EQ(type_of("blk.1.attn_q.bias", {2048}), Type::F32);
    EXPECT_EQ(type_of("rope_freqs.weight", {64}), Type::F32);
    // Trailing dimensions of 1 do not make a matrix.
    EXPECT_EQ(type_of("blk.1.odd.weight", {256, 1, 1}), Type::F32);
    EXPECT_EQ(type_of("blk.1.ffn_gate_exps.weight", {2048, 1536, 64}), Type::Q4_K);
    // A source type is kept by tensors that are not quantized.
    EXPECT_EQ(recipe::choose_type(f, q4km, "blk.1.attn_norm.weight", std::vector<int64_t>{2048},
                                  Type::F16)
                  .type,
              Type::F16);
}

TEST(QuantRecipe, TargetNames) {
    const auto m = recipe::parse_target("q4_k_m");
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(*m, recipe::Target::of_mix(recipe::Mix::Q4_K_M));
    EXPECT_EQ(m->base, Type::Q4_K);
    EXPECT_EQ(recipe::file_type(*m), 15u);
    EXPECT_EQ(recipe::target_name(*m), "Q4_K_M");
    // Type names are pure, even where a mix has the same name.
    EXPECT_EQ(recipe::parse_target("Q2_K"), recipe::Target::pure(Type::Q2_K));
    EXPECT_EQ(recipe::parse_target("bf16"), recipe::Target::pure(Type::BF16));
    EXPECT_EQ(recipe::file_type(recipe::Target::pure(Type::BF16)), 32u);
    EXPECT_EQ(recipe::file_type(recipe::Target::pure(Type::F32)), 0u);
    for (const char* bad : {"Q8_K", "Q8_1", "IQ4_XS", "Q4_K_X", "", "q4_k_m "})
        EXPECT_FALSE(recipe::parse_target(bad).has_value()) << bad;
}

TEST(QuantRecipe, QuantizeOrder) {
    std::vector<std::string> names{"blk.10.attn_q.weight", "blk.9.ffn_up.weight",
                                   "output.weight",        "blk.9.attn_k_b.weight",
                                   "token_embd.weight",    "blk.9.attn_kv_a_mqa.weight",
                                   "output_norm.weight"};
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        return recipe::quantize_order_less(a, b);
    });
    const std::vector<std::string> want{
        "output.weight",         "output_norm.weight",         "token_embd.weight",
        "blk.9.attn_k_b.weight", "blk.9.attn_kv_a_mqa.weight", "blk.9.ffn_up.weight",
        "blk.10.attn_q.weight"};
    EXPECT_EQ(names, want);
}

}  // namespace
}  // namespace strata
