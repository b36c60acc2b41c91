// Regrouping at load (runtime/interleave.h), Q4_K and Q6_K: an engine rewrites the matrices of
// its model's mapping into the interleaved layout, the rewritten bytes read back in row order
// equal the file's, the bytes around them (other tensors) are untouched, and the logits are those
// of the file's layout (--no-repack) bit for bit, for a prompt and for single-token decodes.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "offload/expert_cache.h"
#include "runtime/engine.h"
#include "runtime/expert_table.h"
#include "runtime/gpu_tier.h"
#include "runtime/interleave.h"
#include "runtime/session.h"
#include "scheduler/cost.h"
#include "simd/repack.h"
#include "test_util.h"
#include "tiny_model.h"

namespace strata {
namespace {

// A model of other shapes than the golden ones: n_vocab 160 (output.weight regroups too), an
// odd number of layers, rows of 512.
test::TinySpec spec_of(quant::Type type) {
    test::TinySpec s;
    s.seed = 57;
    s.n_vocab = 160;
    s.n_layer = 3;
    s.n_embd = 512;
    s.n_head = 8;
    s.n_head_kv = 2;
    s.head_dim = 64;
    s.n_ff = 768;
    s.type = type;
    return s;
}

// The logits of ids' prompt (all but the last n_decode, in one pass) and of n_decode single-token
// decodes after it.
std::vector<float> session_logits(Session& session, const std::vector<int32_t>& ids,
                                  size_t n_decode) {
    std::vector<float> out;
    session.decode_all({ids.data(), ids.size() - n_decode}, out);
    for (size_t i = ids.size() - n_decode; i < ids.size(); ++i) {
        const std::span<const float> l = session.decode({&ids[i], 1});
        out.insert(out.end(), l.begin(), l.end());
    }
    return out;
}

std::vector<float> logits_of(const Model& model, bool repack, const std::vector<int32_t>& ids) {
    SessionOptions o;
    o.n_ctx = 64;
    o.repack = repack;
    Session session(model, o);
    return session_logits(session, ids, 2);
}

// A GPU tier of `budget` bytes on the host device, planned with published figures and no PCIe
// latency (or a model this small is faster on the CPU alone).
GpuOptions host_tier(uint64_t budget) {
    GpuOptions g;
    g.budget = budget;
    g.device = "host";
    g.reserve = 0;
    g.figures = scheduler::published_figures();
    g.figures->pcie_latency_us = 0;
    return g;
}

class Interleave : public ::testing::TestWithParam<quant::Type> {};

TEST_P(Interleave, SameLogitsAsTheFileLayoutAndTheBytesReadBack) {
    if (!simd::can_interleave(GetParam(), quant::QK_K, 16))
        GTEST_SKIP() << "no interleaved tile for this type on this CPU (AVX-512 VNNI): nothing "
                        "regroups";
    const test::TinySpec spec = spec_of(GetParam());
    test::TempDir dir;
    const auto path = dir / "m.gguf";
    test::write_tiny_model(spec, path);
    const std::vector<int32_t> ids = test::random_tokens(21, spec.n_vocab, 5);

    const Model plain = Model::load(gguf::File::open(path.string()));
    const std::vector<float> want = logits_of(plain, /*repack=*/false, ids);
    for (const gguf::Tensor& t : plain.file().tensors())
        EXPECT_FALSE(t.interleaved) << t.name << " regrouped under --no-repack";

    const Model model = Model::load(gguf::File::open(path.string()));
    const std::vector<float> got = logits_of(model, /*repack=*/true, ids);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));

    // Every tensor's bytes against the file's: regrouped ones read back in row order.
    std::ifstream file(path, std::ios::binary);
    int64_t regrouped = 0;
    bool output_regrouped = false;
    for (const gguf::Tensor& t : model.file().tensors()) {
        std::vector<uint8_t> disk(t.nbytes);
        file.seekg(static_cast<std::streamoff>(t.file_offset));
        file.read(reinterpret_cast<char*>(disk.data()), static_cast<std::streamsize>(t.nbytes));
        ASSERT_TRUE(file.good()) << t.name;
        std::vector<uint8_t> mem(t.data, t.data + t.nbytes);
        if (t.interleaved) {
            ++regrouped;
            output_regrouped |= t.name == "output.weight";
            EXPECT_NE(mem, disk) << t.name << " marked regrouped but unchanged";
            simd::deinterleave_rows(t.type, mem.data(), t.ne[0], t.n_rows());
        } else {
            EXPECT_FALSE(interleavable(t, false)) << t.name << " qualifies but was left alone";
        }
        EXPECT_EQ(mem, disk) << t.name;
    }
    // 3 layers × 7 matrices and output.weight.
    EXPECT_EQ(regrouped, 3 * 7 + 1);
    EXPECT_TRUE(output_regrouped);
    // A second engine on the same model leaves it as it is.
    EXPECT_EQ(interleave_weights(model, false), 0u);
    EXPECT_EQ(logits_of(model, true, ids), want);
}

INSTANTIATE_TEST_SUITE_P(Types, Interleave, ::testing::Values(quant::Type::Q4_K, quant::Type::Q6_K),
                         [](const auto& p) { return std::string(quant::traits(p.param).name); });

// A GPU tier planned for half the weights: the tensors it takes whole keep the file's layout (so
// that their pages can be handed back once uploaded), the others are regrouped, and the split
// gives the logits of the file's layout on the CPU alone, bit for bit.
TEST(InterleaveGpuTier, TensorsTheTierTakesWholeAreNotRegrouped) {
    if (!simd::can_interleave(quant::Type::Q4_K, quant::QK_K, 16))
        GTEST_SKIP() << "no interleaved tile for Q4_K on this CPU (AVX-512 VNNI): nothing "
                        "regroups";
    const test::TinySpec spec = spec_of(quant::Type::Q4_K);
    test::TempDir dir;
    const auto path = dir / "m.gguf";
    test::write_tiny_model(spec, path);
    const std::vector<int32_t> ids = test::random_tokens(21, spec.n_vocab, 5);
    const Model plain = Model::load(gguf::File::open(path.string()));
    const std::vector<float> want = logits_of(plain, /*repack=*/false, ids);

    const Model model = Model::load(gguf::File::open(path.string()));
    uint64_t weights = 0;
    for (const gguf::Tensor& t : model.file().tensors()) weights += t.nbytes;
    SessionOptions o;
    o.n_ctx = 64;
    o.gpu = host_tier(weights / 2);
    Session session(model, o);
    ASSERT_NE(session.gpu_tier(), nullptr);
    // What the tier uploaded whole, as the device holds it.
    const auto& whole = session.gpu_tier()->weights().tensors;
    int64_t kept = 0, regrouped = 0;
    for (const gguf::Tensor& t : model.file().tensors()) {
        if (whole.count(std::string(t.name)) > 0) {
            EXPECT_FALSE(t.interleaved) << t.name << " is on the GPU tier but was regrouped";
            kept += interleavable(t, false);
        } else {
            regrouped += t.interleaved;
        }
    }
    EXPECT_GT(kept, 0) << "the tier took no regroupable tensor whole (" << whole.size()
                       << " tensors whole): the test tests nothing";
    EXPECT_GT(regrouped, 0);
    const std::vector<float> got = session_logits(session, ids, 2);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));
}

// A deepseek2 model whose experts regroup (rows of 256, 256 of them).
test::TinySpec moe_spec(quant::Type type) {
    test::TinySpec spec;
    spec.arch = Arch::DeepSeek2;
    spec.seed = 91;
    spec.n_vocab = 130;
    spec.n_layer = 3;
    spec.n_embd = 256;
    spec.n_head = 4;
    spec.n_ff = 512;
    spec.n_ff_exp = 256;
    spec.n_expert = 8;
    spec.n_expert_used = 3;
    spec.gating = Gating::Sigmoid;
    spec.probs_bias = true;
    spec.weights_norm = true;
    spec.type = type;
    return spec;
}

// A GPU tier that takes some of a stack's expert slabs: those keep the file's rows (their pages
// of the mapping are handed back once uploaded), the stack's other slabs are regrouped, and the
// split gives the CPU's logits in the file's layout bit for bit; so does a second session on the
// same model without a tier, which reads the handed-back slabs from the file again, and a third
// whose tier takes every slab.
TEST(InterleaveGpuTier, ExpertSlabsTheTierTakesKeepTheFileRows) {
    if (!simd::can_interleave(quant::Type::Q4_K, quant::QK_K, 16))
        GTEST_SKIP() << "no interleaved tile for Q4_K on this CPU (AVX-512 VNNI): nothing "
                        "regroups";
    const test::TinySpec spec = moe_spec(quant::Type::Q4_K);
    test::TempDir dir;
    const auto path = dir / "moe.gguf";
    test::write_tiny_model(spec, path);
    const std::vector<int32_t> ids = test::random_tokens(29, spec.n_vocab, 11);
    const Model plain = Model::load(gguf::File::open(path.string()));
    const std::vector<float> want = logits_of(plain, /*repack=*/false, ids);

    const Model model = Model::load(gguf::File::open(path.string()));
    uint64_t weights = 0, routed = 0;
    for (const gguf::Tensor& t : model.file().tensors()) {
        weights += t.nbytes;
        if (role_of(t.name) == Role::RoutedExperts) routed += t.nbytes;
    }
    SessionOptions o;
    o.n_ctx = 64;
    // Everything but the routed experts, and about half of those.
    o.gpu = host_tier(weights - routed / 2);
    std::vector<float> got;
    {
        Session session(model, o);
        ASSERT_NE(session.gpu_tier(), nullptr);
        const auto& slabs = session.gpu_tier()->weights().slabs;
        std::ifstream file(path, std::ios::binary);
        int64_t kept = 0, regrouped = 0, mixed = 0;
        for (const gguf::Tensor& t : model.file().tensors()) {
            if (role_of(t.name) != Role::RoutedExperts) continue;
            const size_t slab = t.nbytes / static_cast<size_t>(t.ne[2]);
            int64_t here = 0;
            for (int64_t e = 0; e < t.ne[2]; ++e) {
                std::vector<uint8_t> disk(slab);
                file.seekg(static_cast<std::streamoff>(t.file_offset + e * slab));
                file.read(reinterpret_cast<char*>(disk.data()), static_cast<std::streamsize>(slab));
                ASSERT_TRUE(file.good()) << t.name;
                std::vector<uint8_t> mem(t.data + e * slab, t.data + (e + 1) * slab);
                if (slabs.count({std::string(t.name), e}) > 0) {
                    EXPECT_FALSE(t.slab_interleaved(e))
                        << t.name << " expert " << e << " is on the GPU tier but was regrouped";
                    ++kept;
                    ++here;
                } else {
                    EXPECT_TRUE(t.slab_interleaved(e)) << t.name << " expert " << e;
                    ++regrouped;
                    simd::deinterleave_rows(t.type, mem.data(), t.ne[0], t.ne[1]);
                }
                EXPECT_EQ(mem, disk) << t.name << " expert " << e;
            }
            mixed += here > 0 && here < t.ne[2];
        }
        EXPECT_GT(mixed, 0) << "no stack was split between the tier and the CPU (" << kept
                            << " slabs on the tier, " << regrouped
                            << " regrouped): the test tests nothing";
        got = session_logits(session, ids, 2);
    }
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));
    EXPECT_EQ(logits_of(model, /*repack=*/true, ids), want);
    // A later tier that takes every slab, of both layouts.
    o.gpu.budget = 2 * weights;
    Session whole(model, o);
    ASSERT_NE(whole.gpu_tier(), nullptr);
    int64_t rows_up = 0, regrouped_up = 0;
    for (const auto& [key, buffer] : whole.gpu_tier()->weights().slabs) {
        const bool regrouped = model.file().tensor(key.first).slab_interleaved(key.second);
        regrouped_up += regrouped;
        rows_up += !regrouped;
    }
    EXPECT_GT(rows_up, 0);
    EXPECT_GT(regrouped_up, 0) << "the second tier took only slabs in rows: the test tests less";
    const std::vector<float> all_on_tier = session_logits(whole, ids, 2);
    EXPECT_EQ(0, std::memcmp(all_on_tier.data(), want.data(), want.size() * sizeof(float)));
}

// moe_spec under an expert cache that holds half of its experts: experts a prompt multiplies for
// several tokens are regrouped in their slots and decoding then reads them so, or in rows when they
// were evicted and read again. Prompt and decodes give the bits of the mapping in the file's
// layout; with --no-repack nothing is rewritten.
class InterleaveSlots : public ::testing::TestWithParam<quant::Type> {};

std::vector<float> budget_logits(const Model& model, uint64_t budget, bool repack,
                                 const std::vector<int32_t>& ids, uint64_t* rewrites) {
    SessionOptions o;
    o.n_ctx = 64;
    o.repack = repack;
    o.ram_budget = budget;
    o.reader.quiet = true;
    Session session(model, o);
    std::vector<float> out = session_logits(session, ids, 3);
    *rewrites = session.expert_cache() ? session.expert_cache()->stats().rewrites : 0;
    return out;
}

TEST_P(InterleaveSlots, RegroupedCacheSlotsGiveTheSameLogits) {
    if (!simd::can_interleave(GetParam(), quant::QK_K, 16))
        GTEST_SKIP() << "no interleaved tile for this type on this CPU (AVX-512 VNNI): nothing "
                        "regroups";
    const test::TinySpec spec = moe_spec(GetParam());
    test::TempDir dir;
    const auto path = dir / "moe.gguf";
    test::write_tiny_model(spec, path);
    const std::vector<int32_t> ids = test::random_tokens(27, spec.n_vocab, 11);

    const Model model = Model::load(gguf::File::open(path.string()));
    SessionOptions plain;
    plain.n_ctx = 64;
    plain.repack = false;
    Session reference(model, plain);
    const std::vector<float> want = session_logits(reference, ids, 3);

    const offload::ExpertStore store(expert_table(model));
    const uint64_t budget = store.resident_bytes() + reference.cache_bytes() +
                            reference.engine().workspace_bytes() +
                            static_cast<uint64_t>(store.n_routed() / 2) * store.slot_bytes();
    uint64_t rewrites = 0;
    const std::vector<float> got = budget_logits(model, budget, true, ids, &rewrites);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));
    EXPECT_GT(rewrites, 0u) << "no expert slot was regrouped";

    const std::vector<float> rows = budget_logits(model, budget, false, ids, &rewrites);
    EXPECT_EQ(0, std::memcmp(rows.data(), want.data(), rows.size() * sizeof(float)));
    EXPECT_EQ(rewrites, 0u) << "slots regrouped under --no-repack";
}

INSTANTIATE_TEST_SUITE_P(Types, InterleaveSlots,
                         ::testing::Values(quant::Type::Q4_K, quant::Type::Q6_K),
                         [](const auto& p) { return std::string(quant::traits(p.param).name); });

}  // namespace
}  // namespace strata
