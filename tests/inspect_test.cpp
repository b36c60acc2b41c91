// strata inspect: agrees with the golden manifest for every golden model, reports split models,
// totals by role, problems of unrunnable models, and refuses malformed files with one line.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/gguf.h"
#include "synth/synth.h"
#include "tests/test_util.h"

namespace strata {
namespace {

using Json = nlohmann::json;

Json load_json(const std::filesystem::path& path) {
    std::ifstream in(path);
    return Json::parse(in);
}

// Runs `strata inspect --json PATH`; the output must be exactly one JSON object.
Json inspect_json(const std::string& path) {
    const test::CommandResult r = test::run_strata("inspect --json " + path);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    Json j;
    EXPECT_NO_THROW(j = Json::parse(r.out)) << r.out.substr(0, 200);
    EXPECT_TRUE(j.is_object());
    return j;
}

TEST(Inspect, AgreesWithManifestForEveryGoldenModel) {
    STRATA_REQUIRE_GOLDEN();
    const Json manifest = load_json(test::golden_dir() / "manifest.json");
    ASSERT_GE(manifest["models"].size(), 20u);
    for (const Json& m : manifest["models"]) {
        SCOPED_TRACE(m["file"].get<std::string>());
        const Json j = inspect_json((test::golden_dir() / m["file"].get<std::string>()).string());
        EXPECT_EQ(j["arch"], m["arch"]);
        EXPECT_EQ(j["n_tensors"], m["n_tensors"]);
        EXPECT_EQ(j["types"], m["types"]);
        EXPECT_EQ(j["file_bytes"], m["file_bytes"]);
        EXPECT_EQ(j["metadata"], m["metadata"]);
        EXPECT_EQ(j["metadata_types"], m["metadata_types"]);
        ASSERT_EQ(j["tensors"].size(), m["tensors"].size());
        int64_t params = 0;
        for (size_t i = 0; i < m["tensors"].size(); ++i) {
            const Json& got = j["tensors"][i];
            const Json& want = m["tensors"][i];
            EXPECT_EQ(got["name"], want["name"]);
            EXPECT_EQ(got["type"], want["type"]);
            EXPECT_EQ(got["shape"], want["shape"]);
            EXPECT_EQ(got["offset"], want["offset"]);
            int64_t n = 1;
            for (const Json& d : want["shape"]) n *= d.get<int64_t>();
            params += n;
        }
        EXPECT_EQ(j["n_params"].get<int64_t>(), params);
        EXPECT_EQ(j["valid"], true) << j["problems"];
        EXPECT_EQ(j["problems"], Json::array());
    }
}

TEST(Inspect, TextReport) {
    STRATA_REQUIRE_GOLDEN();
    const auto r = test::run_strata("inspect " +
                                    (test::golden_dir() / "models" / "llama.Q4_K_M.gguf").string());
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* part :
         {"GGUF v3, 1 shard", "alignment 32", "tokenizer.ggml.tokens",
          "512 items:", "ARRAY[STRING]", "blk.1.ffn_down.weight", "Q6_K",
          "totals by type:", "totals by role:", "embed_output", "verdict: valid"}) {
        EXPECT_NE(r.out.find(part), std::string::npos) << part;
    }
    // Long strings are cut, with their size.
    EXPECT_NE(r.out.find("… (389 bytes)"), std::string::npos);
    // A token list is summarised, not dumped: far fewer lines than tokens.
    EXPECT_LT(std::count(r.out.begin(), r.out.end(), '\n'), 120);
}

// Totals by role add up, and the router's share is what its two tensors hold.
TEST(Inspect, RolesOfASynthesizedModel) {
    test::TempDir dir;
    synth::Spec spec = synth::make_spec("tiny", Arch::DeepSeek2);
    synth::Overrides o;
    o.experts = 16;
    o.layers = 3;
    synth::apply(spec, o);
    const std::string path = (dir / "ds.gguf").string();
    synth::write_model(spec, path);
    const Json j = inspect_json(path);
    uint64_t sum = 0;
    for (const auto& [role, bytes] : j["roles"].items()) sum += bytes.get<uint64_t>();
    EXPECT_EQ(sum, j["tensor_bytes"].get<uint64_t>());
    // 2 MoE blocks × (ffn_gate_inp [256, 16] + exp_probs_b [16]) in F32.
    EXPECT_EQ(j["roles"]["router"].get<uint64_t>(), 2u * (256 * 16 + 16) * 4);
    EXPECT_EQ(j["totals_by_role"]["routed_experts"]["tensors"], 6);
    EXPECT_EQ(j["valid"], true);
    EXPECT_EQ(j["n_tensors"], j["tensors"].size());
}

// A split shape-only model: all shards read from the first, types as the table says.
TEST(Inspect, SplitShapeOnlyModel) {
    STRATA_REQUIRE_GOLDEN();
    test::TempDir dir;
    const synth::Written w =
        synth::write_model(synth::make_spec("r1-671b", std::nullopt), (dir / "r1.gguf").string());
    const Json j = inspect_json(w.paths[0]);
    const Json table = load_json(test::golden_dir() / "tables" / "r1-671b.Q4_K_M.json");
    EXPECT_EQ(j["n_tensors"], table["n_tensors"]);
    EXPECT_EQ(j["types"], table["types"]);
    EXPECT_EQ(j["n_params"], table["n_params"]);
    EXPECT_EQ(j["shards"].size(), 9u);
    EXPECT_EQ(j["valid"], true) << j["problems"];
    uint64_t experts = 0;
    for (const Json& t : table["tensors"])
        if (t["name"].get<std::string>().find("_exps.") != std::string::npos)
            experts += t["bytes"].get<uint64_t>();
    EXPECT_EQ(j["roles"]["routed_experts"].get<uint64_t>(), experts);
}

// A well-formed file that Strata cannot run: listed problems, not an error.
TEST(Inspect, UnrunnableModelListsProblems) {
    test::TempDir dir;
    gguf::Writer w;
    w.set_str("general.architecture", "llama");
    w.set_u32("llama.block_count", 1);
    w.set_u32("llama.embedding_length", 64);
    w.set_u32("llama.attention.head_count", 4);
    w.set_u32("llama.feed_forward_length", 128);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.add_tensor("token_embd.weight", quant::Type::F32, {64, 300}, nullptr);
    w.add_tensor("output_norm.weight", quant::Type::F32, {64}, nullptr);
    w.add_tensor("blk.0.attn_q.weight", quant::Type::F32, {64, 32}, nullptr);  // wrong shape
    const std::string path = (dir / "bad.gguf").string();
    w.write(path);
    const Json j = inspect_json(path);
    EXPECT_EQ(j["valid"], false);
    const std::string problems = j["problems"].dump();
    EXPECT_NE(problems.find("blk.0.attn_q.weight"), std::string::npos) << problems;
    EXPECT_NE(problems.find("missing tensor 'blk.0.attn_k.weight'"), std::string::npos) << problems;
    const auto text = test::run_strata("inspect " + path);
    EXPECT_EQ(text.status, 0);
    EXPECT_NE(text.out.find("not runnable"), std::string::npos);
}

TEST(Inspect, MalformedFilesAreOneLineErrors) {
    STRATA_REQUIRE_GOLDEN();
    test::TempDir dir;
    const std::string good = test::read_file(test::golden_dir() / "models" / "qwen2.f32.gguf");
    auto write = [&](const std::string& name, const std::string& bytes) {
        std::ofstream(dir / name, std::ios::binary) << bytes;
        return (dir / name).string();
    };
    const std::string cases[] = {
        write("truncated.gguf", good.substr(0, 5000)),
        write("text.gguf", "this is not a model\n"),
        write("empty.gguf", ""),
        (dir / "missing.gguf").string(),
    };
    for (const std::string& path : cases) {
        for (const char* flag : {"", "--json "}) {
            const auto r = test::run_strata(std::string("inspect ") + flag + path);
            EXPECT_EQ(r.status, 1) << path;
            EXPECT_EQ(r.out, "") << path;
            EXPECT_TRUE(r.err.starts_with("strata: error: ")) << r.err;
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        }
    }
}

}  // namespace
}  // namespace strata
