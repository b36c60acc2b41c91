#include "runtime/model.h"

#include <gtest/gtest.h>

#include "runtime/error.h"
#include "tests/test_util.h"

namespace strata {
namespace {

gguf::File open_golden(const std::string& name) {
    return gguf::File::open((test::golden_dir() / "models" / name).string());
}

TEST(Model, EveryGoldenModelBinds) {
    STRATA_REQUIRE_GOLDEN();
    for (const auto& entry : std::filesystem::directory_iterator(test::golden_dir() / "models")) {
        SCOPED_TRACE(entry.path().string());
        const gguf::File file = gguf::File::open(entry.path().string());
        const auto problems = Model::validate(file);
        EXPECT_TRUE(problems.empty()) << (problems.empty() ? "" : problems.front());
    }
}

TEST(Model, DeepSeek2HyperparametersMatchTheReadme) {
    STRATA_REQUIRE_GOLDEN();
    const Model m = Model::load(open_golden("deepseek2.f32.gguf"));
    const HParams& hp = m.hparams();
    EXPECT_EQ(hp.arch, Arch::DeepSeek2);
    EXPECT_EQ(hp.n_layer, 2);
    EXPECT_EQ(hp.n_embd, 256);
    EXPECT_EQ(hp.n_head, 4);
    EXPECT_EQ(hp.q_lora_rank, 256);
    EXPECT_EQ(hp.kv_lora_rank, 256);
    EXPECT_EQ(hp.qk_nope, 64);
    EXPECT_EQ(hp.qk_rope, 32);
    EXPECT_EQ(hp.v_head, 64);
    EXPECT_TRUE(hp.mla_split);
    EXPECT_EQ(hp.n_dense_lead, 1);
    EXPECT_EQ(hp.n_expert, 8);
    EXPECT_EQ(hp.n_expert_used, 2);
    EXPECT_EQ(hp.n_expert_shared, 1);
    EXPECT_EQ(hp.n_group, 4);
    EXPECT_EQ(hp.n_group_used, 2);
    EXPECT_EQ(hp.gating, Gating::Sigmoid);
    EXPECT_TRUE(hp.weights_norm);
    EXPECT_FLOAT_EQ(hp.weights_scale, 2.5f);
    EXPECT_EQ(hp.scaling, RopeScaling::Yarn);
    EXPECT_FLOAT_EQ(hp.rope_factor, 40.0f);
    EXPECT_EQ(hp.rope_orig_ctx, 4096);
    EXPECT_NE(m.layers()[1].exp_probs_b, nullptr);
}

TEST(Model, LegacyAndLiteDescribeTheSameAttention) {
    STRATA_REQUIRE_GOLDEN();
    const Model lite = Model::load(open_golden("deepseek2-lite.f32.gguf"));
    const Model legacy = Model::load(open_golden("deepseek2-legacy.f32.gguf"));
    EXPECT_TRUE(lite.hparams().mla_split);
    EXPECT_FALSE(legacy.hparams().mla_split);
    for (const HParams* hp : {&lite.hparams(), &legacy.hparams()}) {
        EXPECT_EQ(hp->q_lora_rank, 0);
        EXPECT_EQ(hp->qk_nope, 32);
        EXPECT_EQ(hp->qk_rope, 16);
        EXPECT_EQ(hp->v_head, 32);
        EXPECT_EQ(hp->kv_lora_rank, 128);
    }
    EXPECT_EQ(legacy.hparams().gating, Gating::Softmax);
    EXPECT_FALSE(lite.hparams().weights_norm);
}

TEST(Model, TiedEmbeddingsAndLlama3Freqs) {
    STRATA_REQUIRE_GOLDEN();
    const Model qwen = Model::load(open_golden("qwen2.f32.gguf"));
    EXPECT_EQ(qwen.output, qwen.token_embd);
    EXPECT_NE(qwen.layers()[0].attn_q_bias, nullptr);
    const Model llama = Model::load(open_golden("llama.f32.gguf"));
    EXPECT_NE(llama.output, llama.token_embd);
    EXPECT_TRUE(llama.hparams().has_rope_freqs);
    EXPECT_EQ(llama.hparams().n_head_kv, 2);
    EXPECT_EQ(llama.hparams().head_dim, 64);
}

TEST(Model, RolesOfTensorNames) {
    EXPECT_EQ(role_of("token_embd.weight"), Role::EmbedOutput);
    EXPECT_EQ(role_of("output.weight"), Role::EmbedOutput);
    EXPECT_EQ(role_of("output_norm.weight"), Role::Norm);
    EXPECT_EQ(role_of("blk.3.attn_kv_a_norm.weight"), Role::Norm);
    EXPECT_EQ(role_of("blk.3.attn_k_b.weight"), Role::Attention);
    EXPECT_EQ(role_of("blk.3.ffn_gate_inp.weight"), Role::Router);
    EXPECT_EQ(role_of("blk.3.exp_probs_b.bias"), Role::Router);
    EXPECT_EQ(role_of("blk.3.ffn_down_exps.weight"), Role::RoutedExperts);
    EXPECT_EQ(role_of("blk.3.ffn_up_shexp.weight"), Role::SharedExperts);
    EXPECT_EQ(role_of("blk.0.ffn_up.weight"), Role::DenseFfn);
    EXPECT_EQ(role_of("rope_freqs.weight"), Role::Attention);
}

}  // namespace
}  // namespace strata
