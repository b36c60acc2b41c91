// What is in a model file: hyperparameters per architecture and the weight table by layer and
// role, every tensor's presence, type and shape checked against the hyperparameters.
//
// Shapes are written GGUF-style, ne[0] first (ne[0] is the contiguous row length), so a weight
// that maps n_in inputs to n_out outputs is [n_in, n_out].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/gguf.h"

namespace strata {

enum class Arch { Llama, Qwen2, DeepSeek2 };
std::string_view arch_name(Arch arch);

enum class RopeScaling { None, Linear, Yarn };
enum class Gating { Softmax = 1, Sigmoid = 2 };  // deepseek2.expert_gating_func

struct HParams {
    Arch arch = Arch::Llama;
    int64_t n_vocab = 0;
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_ctx_train = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;  // llama / qwen2: grouped-query KV heads
    int64_t head_dim = 0;   // llama / qwen2: per-head K and V size
    int64_t n_ff = 0;       // dense FFN width
    int64_t n_rot = 0;      // rotated dims per head (deepseek2: qk_rope)
    float rms_eps = 1e-5f;
    float rope_base = 10000.0f;

    // RoPE scaling.
    RopeScaling scaling = RopeScaling::None;
    float rope_factor = 1.0f;   // context extension factor (freq_scale = 1 / factor)
    int64_t rope_orig_ctx = 0;  // original training context (YaRN)
    float yarn_beta_fast = 32.0f;
    float yarn_beta_slow = 1.0f;
    float yarn_log_mul = 0.0f;      // 0.1 · mscale_all_dim
    float rope_attn_factor = 1.0f;  // rope.scaling.attn_factor: extra cos/sin magnitude
    bool has_rope_freqs = false;    // llama3: per-pair frequency divisors in rope_freqs.weight

    // deepseek2 MLA.
    int64_t q_lora_rank = 0;  // 0: plain attn_q
    int64_t kv_lora_rank = 0;
    int64_t qk_nope = 0;
    int64_t qk_rope = 0;
    int64_t v_head = 0;
    bool mla_split = false;  // attn_k_b / attn_v_b (true) or the legacy attn_kv_b (false)

    // deepseek2 MoE.
    int64_t n_dense_lead = 0;  // leading dense blocks
    int64_t n_expert = 0;
    int64_t n_expert_used = 0;
    int64_t n_expert_shared = 0;
    int64_t n_ff_exp = 0;
    int64_t n_group = 1;
    int64_t n_group_used = 1;
    Gating gating = Gating::Softmax;
    bool weights_norm = false;
    float weights_scale = 1.0f;  // 0 in the file means 1

    bool is_moe_layer(int64_t il) const { return arch == Arch::DeepSeek2 && il >= n_dense_lead; }
};

// Weights of one block. Absent tensors are null. Shapes (ne[0] first) in the comments.
struct LayerWeights {
    const gguf::Tensor* attn_norm = nullptr;  // [n_embd]
    // llama / qwen2
    const gguf::Tensor* attn_q = nullptr;  // [n_embd, n_head·head_dim]; deepseek2 without q_lora:
                                           // [n_embd, n_head·(qk_nope+qk_rope)]
    const gguf::Tensor* attn_k = nullptr;  // [n_embd, n_head_kv·head_dim]
    const gguf::Tensor* attn_v = nullptr;  // [n_embd, n_head_kv·head_dim]
    const gguf::Tensor* attn_q_bias = nullptr;  // qwen2: [n_head·head_dim]
    const gguf::Tensor* attn_k_bias = nullptr;  // qwen2: [n_head_kv·head_dim]
    const gguf::Tensor* attn_v_bias = nullptr;  // qwen2: [n_head_kv·head_dim]
    // deepseek2 MLA
    const gguf::Tensor* attn_q_a = nullptr;        // [n_embd, q_lora]
    const gguf::Tensor* attn_q_a_norm = nullptr;   // [q_lora]
    const gguf::Tensor* attn_q_b = nullptr;        // [q_lora, n_head·(qk_nope+qk_rope)]
    const gguf::Tensor* attn_kv_a_mqa = nullptr;   // [n_embd, kv_lora+qk_rope]
    const gguf::Tensor* attn_kv_a_norm = nullptr;  // [kv_lora]
    const gguf::Tensor* attn_k_b = nullptr;        // [qk_nope, kv_lora, n_head]
    const gguf::Tensor* attn_v_b = nullptr;        // [kv_lora, v_head, n_head]
    const gguf::Tensor* attn_kv_b = nullptr;       // legacy: [kv_lora, n_head·(qk_nope+v_head)]
    const gguf::Tensor* attn_output = nullptr;     // [n_head·v_dim, n_embd]

    const gguf::Tensor* ffn_norm = nullptr;  // [n_embd]
    // dense FFN
    const gguf::Tensor* ffn_gate = nullptr;  // [n_embd, n_ff]
    const gguf::Tensor* ffn_up = nullptr;    // [n_embd, n_ff]
    const gguf::Tensor* ffn_down = nullptr;  // [n_ff, n_embd]
    // MoE
    const gguf::Tensor* ffn_gate_inp = nullptr;    // router: [n_embd, n_expert]
    const gguf::Tensor* exp_probs_b = nullptr;     // selection bias: [n_expert]
    const gguf::Tensor* ffn_gate_exps = nullptr;   // [n_embd, n_ff_exp, n_expert]
    const gguf::Tensor* ffn_up_exps = nullptr;     // [n_embd, n_ff_exp, n_expert]
    const gguf::Tensor* ffn_down_exps = nullptr;   // [n_ff_exp, n_embd, n_expert]
    const gguf::Tensor* ffn_gate_shexp = nullptr;  // [n_embd, n_ff_exp·n_shared]
    const gguf::Tensor* ffn_up_shexp = nullptr;    // [n_embd, n_ff_exp·n_shared]
    const gguf::Tensor* ffn_down_shexp = nullptr;  // [n_ff_exp·n_shared, n_embd]
};

// The part of the model a tensor serves, for totals and placement.
enum class Role {
    EmbedOutput,
    Attention,
    Router,
    RoutedExperts,
    SharedExperts,
    DenseFfn,
    Norm,
    Other
};
inline constexpr int kRoleCount = 8;
std::string_view role_name(Role role);  // "embed_output", "attention", ...
Role role_of(std::string_view tensor_name);

class Model {
  public:
    // Reads the hyperparameters and binds every tensor; throws strata::Error with the first
    // problem (and how many more there are) when the file cannot be run.
    static Model load(gguf::File file);
    // Every problem that would stop load(), without throwing; empty when the model is valid.
    static std::vector<std::string> validate(const gguf::File& file);

    const gguf::File& file() const { return *file_; }
    const HParams& hparams() const { return hp_; }
    const std::vector<LayerWeights>& layers() const { return layers_; }

    const gguf::Tensor* token_embd = nullptr;   // [n_embd, n_vocab]
    const gguf::Tensor* output_norm = nullptr;  // [n_embd]
    const gguf::Tensor* output = nullptr;       // [n_embd, n_vocab]; token_embd when tied
    const gguf::Tensor* rope_freqs = nullptr;   // llama3: [n_rot / 2]

  private:
    Model() = default;
    std::unique_ptr<gguf::File> file_;  // heap-held: tensors point into it
    HParams hp_;
    std::vector<LayerWeights> layers_;
    friend class Binder;
};

}  // namespace strata
