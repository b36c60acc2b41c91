// strata synth --fill random: random quantized blocks written directly. The blocks must decode to
// the magnitudes the reference quantizer gives for the same standard deviation, the files must
// pass inspect and run with finite, sane logits, and big files (streamed with O_DIRECT) must hold
// the same bytes as the page-cache path writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "synth/random_blocks.h"
#include "synth/synth.h"
#include "synth/weights.h"
#include "tests/test_util.h"

namespace strata::synth {
namespace {

using quant::Type;

struct Moments {
    double mean = 0, std = 0, max_abs = 0;
    bool finite = true;
};
Moments moments_of(const std::vector<float>& v) {
    Moments m;
    for (float x : v) {
        m.finite = m.finite && std::isfinite(x);
        m.mean += x;
    }
    m.mean /= static_cast<double>(v.size());
    for (float x : v) {
        m.std += (x - m.mean) * (x - m.mean);
        m.max_abs = std::max(m.max_abs, std::abs(static_cast<double>(x)));
    }
    m.std = std::sqrt(m.std / static_cast<double>(v.size()));
    return m;
}

std::vector<float> dequantized(Type t, const std::vector<uint8_t>& bytes, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    quant::traits(t).dequantize(bytes.data(), out.data(), n);
    return out;
}

constexpr Type kRandomTypes[] = {Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::Q8_0,
                                 Type::Q2_K, Type::Q4_K, Type::Q5_K, Type::Q6_K};

// Random blocks decode to what the reference quantizer makes of N(0, σ²) weights: the same
// spread (±20%), mean near zero, no outliers, nothing but finite values.
TEST(RandomBlocks, DecodeLikeTheQuantizersOutput) {
    const float sigma = 0.02f;
    const int64_t n = 256 * 256;  // 256 super-blocks, 2048 legacy blocks
    std::mt19937_64 rng(11);
    std::normal_distribution<float> normal(0.0f, sigma);
    std::vector<float> weights(static_cast<size_t>(n));
    for (float& w : weights) w = normal(rng);
    for (Type t : kRandomTypes) {
        SCOPED_TRACE(quant::type_name(t));
        ASSERT_TRUE(has_random_blocks(t));
        const quant::TypeTraits& tt = quant::traits(t);
        const int64_t blocks = n / tt.block_size;
        std::vector<uint8_t> random(static_cast<size_t>(blocks) * tt.block_bytes);
        random_blocks(t, 42, sigma, random.data(), blocks);
        std::vector<uint8_t> quantized(random.size());
        tt.quantize(weights.data(), quantized.data(), n);

        const Moments r = moments_of(dequantized(t, random, n));
        const Moments q = moments_of(dequantized(t, quantized, n));
        ASSERT_TRUE(r.finite);
        EXPECT_NEAR(r.std, q.std, 0.2 * q.std);
        EXPECT_NEAR(r.std, sigma, 0.2 * sigma);
        EXPECT_LT(std::abs(r.mean), 0.1 * sigma);
        EXPECT_LT(r.max_abs, 6.0 * sigma);
    }
    EXPECT_FALSE(has_random_blocks(Type::Q3_K));
    EXPECT_FALSE(has_random_blocks(Type::F16));
}

TEST(RandomBlocks, SeededAndVaried) {
    for (Type t : kRandomTypes) {
        SCOPED_TRACE(quant::type_name(t));
        const quant::TypeTraits& tt = quant::traits(t);
        const int64_t blocks = 4096 / tt.block_size;
        std::vector<uint8_t> a(static_cast<size_t>(blocks) * tt.block_bytes), b(a.size()),
            c(a.size());
        random_blocks(t, 1, 1.0f, a.data(), blocks);
        random_blocks(t, 1, 1.0f, b.data(), blocks);
        random_blocks(t, 2, 1.0f, c.data(), blocks);
        EXPECT_EQ(a, b);
        EXPECT_NE(a, c);
        // Every level of the type occurs: the blocks are not a few repeated patterns.
        const std::vector<float> v = dequantized(t, a, blocks * tt.block_size);
        std::vector<float> sorted = v;
        std::sort(sorted.begin(), sorted.end());
        const auto distinct = std::unique(sorted.begin(), sorted.end()) - sorted.begin();
        EXPECT_GT(distinct, 64);
    }
}

// Auto picks random blocks only for big models; an explicit fill turns a shape-only preset into a
// model with data and the family's tokenizer, with the same tensor table.
TEST(RandomFill, AutoAndShapePresets) {
    EXPECT_EQ(make_layout(make_spec("big40", Arch::DeepSeek2)).fill, Fill::Random);
    EXPECT_EQ(make_layout(make_spec("bench", Arch::DeepSeek2)).fill, Fill::Quantize);
    EXPECT_EQ(make_layout(make_spec("tiny", Arch::Llama)).fill, Fill::Quantize);

    // big40: about 40 GiB (1.7x a 24 GiB machine), R1's expert shapes, 128 experts, 8 used.
    const Spec big = make_spec("big40", Arch::DeepSeek2);
    uint64_t bytes = 0;
    for (const gguf::Writer& w : make_layout(big).shards) bytes += w.file_bytes();
    EXPECT_GT(bytes, uint64_t{38} << 30);
    EXPECT_LT(bytes, uint64_t{44} << 30);
    EXPECT_EQ(big.hp.n_expert, 128);
    EXPECT_EQ(big.hp.n_expert_used, 8);
    EXPECT_EQ(big.hp.n_ff_exp, 2048);
    EXPECT_EQ(big.hp.n_embd, 7168);

    for (const char* preset : {"r1-distill-qwen-1.5b", "r1-distill-llama-8b"}) {
        SCOPED_TRACE(preset);
        const Spec shape = make_spec(preset, std::nullopt);
        Spec data = shape;
        set_fill(data, Fill::Random);
        EXPECT_TRUE(shape.shape_only);
        EXPECT_FALSE(data.shape_only);
        EXPECT_FALSE(data.reduced_tokenizer);
        const std::vector<TensorPlan> a = plan_tensors(shape), b = plan_tensors(data);
        ASSERT_EQ(a.size(), b.size());
        for (size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(a[i].name, b[i].name);
            EXPECT_EQ(a[i].ne, b[i].ne);
            EXPECT_EQ(a[i].type, b[i].type);
        }
        // Every large tensor of the Q4_K_M mix is written as random blocks.
        for (const TensorPlan& t : b) {
            if (t.ne.size() >= 2) {
                EXPECT_TRUE(fills_random(data, t)) << t.name;
            }
        }
    }
}

std::vector<float> read_logits(const std::string& path, size_t n) {
    const std::string raw = test::read_file(path);
    EXPECT_EQ(raw.size(), n * sizeof(float));
    std::vector<float> v(raw.size() / sizeof(float));
    std::memcpy(v.data(), raw.data(), v.size() * sizeof(float));
    return v;
}

// Tiny models with random blocks pass inspect and run: finite logits with the spread that the
// quantized-float models of the same shape give.
TEST(RandomFill, TinyModelsInspectAndRun) {
    test::TempDir dir;
    const char* models[] = {
        "--arch deepseek2 --preset tiny --type Q4_K_M --layers 4",
        "--arch deepseek2 --preset tiny-legacy --type Q5_K_M",
        "--arch llama --preset tiny --type Q6_K",
        "--arch qwen2 --preset tiny --type Q8_0 --untied",
        "--arch llama --preset tiny --type Q4_0 --layers 3",
    };
    const std::string tokens = "--tokens 0,5,9,300,301,302,17,45,99,100,260,261";
    const size_t n_vocab = 512, n_pos = 12;
    int i = 0;
    for (const char* model : models) {
        SCOPED_TRACE(model);
        double spread[2] = {0, 0};
        for (const char* fill : {"random", "quantize"}) {
            const std::string path = (dir / fmt::format("m{}.gguf", i)).string();
            const std::string logits = (dir / fmt::format("m{}.f32", i++)).string();
            const auto w =
                test::run_strata(fmt::format("synth {} --fill {} -o {}", model, fill, path));
            ASSERT_EQ(w.status, 0) << w.err;
            EXPECT_EQ(w.out.find("random blocks") != std::string::npos,
                      std::string(fill) == "random")
                << w.out;
            const auto r = test::run_strata("inspect --json " + path);
            ASSERT_EQ(r.status, 0) << r.err;
            const auto j = nlohmann::json::parse(r.out);
            EXPECT_EQ(j["valid"], true) << j["problems"];
            const auto e =
                test::run_strata(fmt::format("eval -m {} {} --out {}", path, tokens, logits));
            ASSERT_EQ(e.status, 0) << e.err;
            const Moments m = moments_of(read_logits(logits, n_vocab * n_pos));
            ASSERT_TRUE(m.finite);
            spread[std::string(fill) == "random" ? 0 : 1] = m.std;
        }
        EXPECT_GT(spread[0], 0.5 * spread[1]);
        EXPECT_LT(spread[0], 2.0 * spread[1]);
    }
}

// A file past the O_DIRECT threshold (64 MiB) holds the same bytes whichever way it was written:
// streamed with O_DIRECT on a disk, or through the page cache on tmpfs, which refuses O_DIRECT.
TEST(RandomFill, DirectStreamWritesTheSameBytes) {
    if (!std::filesystem::is_directory("/dev/shm"))
        GTEST_SKIP() << "no /dev/shm to write the page-cache copy to";
    test::TempDir dir;
    const std::string args =
        "--arch llama --preset tiny --embd 2048 --heads 16 --heads-kv 4 --ff 2048 --vocab 16384 "
        "--layers 1 --type Q8_0 --fill random --seed 9";
    const std::string disk = (dir / "big.gguf").string();
    const std::string shm = fmt::format("/dev/shm/strata-synth-{}.gguf", ::getpid());
    const auto a = test::run_strata(fmt::format("synth {} -o {}", args, disk));
    ASSERT_EQ(a.status, 0) << a.err;
    const auto b = test::run_strata(fmt::format("synth {} -o {}", args, shm));
    const std::string on_disk = test::read_file(disk), in_memory = test::read_file(shm);
    std::filesystem::remove(shm);
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_GT(on_disk.size(), size_t{64} << 20);
    EXPECT_TRUE(on_disk == in_memory) << "the two writes differ";
    EXPECT_FALSE(std::filesystem::exists(disk + ".tmp"));
    const auto r = test::run_strata("inspect --json " + disk);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["valid"], true);
}

TEST(RandomFill, CommandLineErrors) {
    test::TempDir dir;
    const std::string out = (dir / "m.gguf").string();
    const std::pair<std::string, std::string> bad[] = {
        {"synth --arch llama --preset tiny --fill noise -o " + out, "unknown --fill 'noise'"},
        {"synth --preset r1-distill-qwen-1.5b --fill random --shape-only -o " + out,
         "--fill and --shape-only exclude each other"},
    };
    for (const auto& [args, says] : bad) {
        const auto r = test::run_strata(args);
        EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
        EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
        EXPECT_FALSE(std::filesystem::exists(out));
    }
}

}  // namespace
}  // namespace strata::synth
