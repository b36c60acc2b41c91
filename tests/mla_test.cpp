// Multi-head latent attention: the runtime's absorbed attention over the compressed cache
// against plain attention with keys and values decompressed per head (the double-precision
// reference), and the legacy attn_kv_b layout against the split attn_k_b / attn_v_b one.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "runtime/session.h"
#include "tests/reference_forward.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace strata {
namespace {

std::vector<int32_t> ids(int64_t n, int64_t vocab) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int32_t>((i * 37 + 11) % vocab);
    return v;
}

std::vector<float> run(const Model& m, const std::vector<int32_t>& tokens) {
    Session s(m, {.n_ctx = static_cast<int64_t>(tokens.size())});
    std::vector<float> out;
    s.decode_all(tokens, out);
    return out;
}

// Absorbed and decompressed attention are the same function; float rounding apart they agree
// (bound as in arch_test: 1e-4 against ~1e-6 measured).
TEST(Mla, AbsorbedEqualsDecompressed) {
    for (int variant = 0; variant < 3; ++variant) {
        SCOPED_TRACE(variant);
        test::TinySpec s;
        s.arch = Arch::DeepSeek2;
        s.seed = 100 + static_cast<uint64_t>(variant);
        s.n_head = variant == 0 ? 7 : 2;
        s.kv_lora = variant == 1 ? 96 : 20;  // latent wider / narrower than a head
        s.qk_nope = variant == 2 ? 40 : 12;
        s.qk_rope = variant == 2 ? 4 : 10;
        s.v_head = variant == 1 ? 8 : 30;
        s.q_lora = variant == 0 ? 0 : 36;
        s.yarn_factor = variant == 2 ? 16.0f : 0.0f;
        test::TempDir dir;
        const Model m = test::load_tiny_model(s, dir / "m.gguf");
        const std::vector<int32_t> t = ids(19, s.n_vocab);
        const std::vector<float> got = run(m, t);
        const std::vector<double> want = test::ReferenceForward(m).logits(t);
        for (int64_t p = 0; p < 19; ++p) {
            EXPECT_LE(test::row_max_rel(got.data() + p * s.n_vocab, want.data() + p * s.n_vocab,
                                        s.n_vocab),
                      1e-4)
                << "position " << p;
        }
    }
}

// Rewrites a split-MLA file as pre-MLA converters wrote it: one attn_kv_b per layer holding, per
// head, the qk_nope key rows (attn_k_b transposed) then the v_head value rows (attn_v_b), and
// per-head key/value lengths instead of the _mla keys.
void write_legacy(const gguf::File& split, const HParams& hp, const std::filesystem::path& path) {
    gguf::Writer w;
    for (const gguf::KeyValue& kv : split.metadata()) {
        const std::string key(kv.key);
        if (key.find("_mla") != std::string::npos || key.ends_with("head_count_kv") ||
            key.ends_with("attention.key_length") || key.ends_with("attention.value_length"))
            continue;
        w.set_value(key, kv.value);
    }
    w.set_u32("deepseek2.attention.head_count_kv", static_cast<uint32_t>(hp.n_head));
    w.set_u32("deepseek2.attention.key_length", static_cast<uint32_t>(hp.qk_nope + hp.qk_rope));
    w.set_u32("deepseek2.attention.value_length", static_cast<uint32_t>(hp.v_head));
    std::vector<std::vector<float>> kv_b;  // alive until write()
    for (const gguf::Tensor& t : split.tensors()) {
        const std::string name(t.name);
        if (name.ends_with("attn_v_b.weight")) continue;
        if (!name.ends_with("attn_k_b.weight")) {
            w.add_tensor(name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                         std::span(t.data, t.nbytes));
            continue;
        }
        const gguf::Tensor& vb = split.tensor(name.substr(0, name.size() - 15) + "attn_v_b.weight");
        const int64_t nope = hp.qk_nope, lora = hp.kv_lora_rank, vh = hp.v_head;
        std::vector<float> k(static_cast<size_t>(t.n_elements())), v(vb.n_elements());
        std::memcpy(k.data(), t.data, k.size() * sizeof(float));
        std::memcpy(v.data(), vb.data, v.size() * sizeof(float));
        std::vector<float>& out =
            kv_b.emplace_back(static_cast<size_t>(hp.n_head * (nope + vh) * lora));
        for (int64_t h = 0; h < hp.n_head; ++h) {
            float* rows = out.data() + h * (nope + vh) * lora;
            for (int64_t i = 0; i < nope; ++i)
                for (int64_t j = 0; j < lora; ++j)
                    rows[i * lora + j] = k[(h * lora + j) * nope + i];
            std::memcpy(rows + nope * lora, v.data() + h * vh * lora, sizeof(float) * vh * lora);
        }
        w.add_tensor(name.substr(0, name.size() - 15) + "attn_kv_b.weight", quant::Type::F32,
                     {lora, hp.n_head * (nope + vh)},
                     std::span(reinterpret_cast<const uint8_t*>(out.data()), out.size() * 4));
    }
    w.write(path.string());
}

// The same weights in either layout give the same logits (the golden pair checks this at one
// shape; here at others, with q_lora and groups).
TEST(Mla, LegacyKvBEqualsSplit) {
    test::TinySpec s;
    s.arch = Arch::DeepSeek2;
    s.seed = 77;
    s.n_head = 3;
    s.q_lora = 24;
    s.kv_lora = 28;
    s.qk_nope = 10;
    s.qk_rope = 6;
    s.v_head = 18;
    s.n_group = 3;
    s.n_group_used = 2;
    s.gating = Gating::Sigmoid;
    s.weights_norm = true;
    test::TempDir dir;
    const Model split = test::load_tiny_model(s, dir / "split.gguf");
    write_legacy(split.file(), split.hparams(), dir / "legacy.gguf");
    const Model legacy = Model::load(gguf::File::open((dir / "legacy.gguf").string()));
    ASSERT_FALSE(legacy.hparams().mla_split);
    const std::vector<int32_t> t = ids(23, s.n_vocab);
    const std::vector<float> a = run(split, t), b = run(legacy, t);
    for (int64_t p = 0; p < 23; ++p)
        EXPECT_LE(test::row_max_rel(b.data() + p * s.n_vocab, a.data() + p * s.n_vocab, s.n_vocab),
                  1e-5);
}

// The forward pass counts each router choice once, batched and one token at a time alike, and
// chooses what the double-precision reference chooses (sigmoid scores, bias, expert groups as in
// R1). A prefill that needs only the last token's logits runs the last layer for that token alone,
// and counts only what it ran.
TEST(Mla, RoutingCountsAreTheRoutersChoices) {
    test::TinySpec s;
    s.arch = Arch::DeepSeek2;
    s.seed = 321;
    s.n_layer = 3;
    s.n_expert = 8;
    s.n_expert_used = 3;
    s.n_group = 4;
    s.n_group_used = 2;
    s.gating = Gating::Sigmoid;
    test::TempDir dir;
    const Model m = test::load_tiny_model(s, dir / "m.gguf");
    const std::vector<int32_t> t = ids(23, s.n_vocab);

    Session session(m, {.n_ctx = 23});
    std::vector<float> all;
    session.decode_all(std::span(t).first(15), all);
    for (size_t i = 15; i < t.size(); ++i) session.decode({&t[i], 1});
    const test::ReferenceForward ref(m);
    ref.logits(t);

    const auto& got = session.routing_counts();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_TRUE(got[0].empty()) << "the dense layer routes nothing";
    for (size_t il = 1; il < 3; ++il) {
        ASSERT_EQ(got[il].size(), 8u);
        EXPECT_EQ(std::accumulate(got[il].begin(), got[il].end(), uint64_t{0}), 23u * 3u);
        EXPECT_EQ(got[il], ref.routes()[il]) << "layer " << il;
    }

    Session last_only(m, {.n_ctx = 23});
    last_only.prefill(std::span(t).first(15));
    const auto& counted = last_only.routing_counts();
    EXPECT_EQ(std::accumulate(counted[1].begin(), counted[1].end(), uint64_t{0}), 15u * 3u);
    EXPECT_EQ(std::accumulate(counted[2].begin(), counted[2].end(), uint64_t{0}), 1u * 3u);
}

}  // namespace
}  // namespace strata
