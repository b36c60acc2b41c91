// Hyperparameters and weight binding. Every problem is collected with a message naming the key or
// tensor and what was expected, so `strata inspect` can list them all and Model::load can refuse a
// file with the first one.
#include "runtime/model.h"

#include <algorithm>
#include <initializer_list>
#include <set>

#include "runtime/error.h"

namespace strata {

std::string_view arch_name(Arch arch) {
    switch (arch) {
        case Arch::Llama:
            return "llama";
        case Arch::Qwen2:
            return "qwen2";
        case Arch::DeepSeek2:
            return "deepseek2";
    }
    return "unknown";
}

std::string_view role_name(Role role) {
    switch (role) {
        case Role::EmbedOutput:
            return "embed_output";
        case Role::Attention:
            return "attention";
        case Role::Router:
            return "router";
        case Role::RoutedExperts:
            return "routed_experts";
        case Role::SharedExperts:
            return "shared_experts";
        case Role::DenseFfn:
            return "dense_ffn";
        case Role::Norm:
            return "norms";
        case Role::Other:
            return "other";
    }
    return "other";
}

Role role_of(std::string_view name) {
    auto has = [&](std::string_view s) { return name.find(s) != std::string_view::npos; };
    if (name.starts_with("token_embd.") || name.starts_with("output.")) return Role::EmbedOutput;
    if (has("_norm.")) return Role::Norm;
    if (has("_exps.")) return Role::RoutedExperts;
    if (has("_shexp.")) return Role::SharedExperts;
    if (has(".ffn_gate_inp.") || has(".exp_probs_b.")) return Role::Router;
    if (has(".attn_") || name.starts_with("rope_freqs.")) return Role::Attention;
    if (has(".ffn_gate.") || has(".ffn_up.") || has(".ffn_down.")) return Role::DenseFfn;
    return Role::Other;
}

// Reads hyperparameters and binds tensors, collecting problems instead of stopping at the first.
class Binder {
  public:
    explicit Binder(const gguf::File& file) : f_(file) {}

    std::vector<std::string> problems;

    void run(HParams& hp, Model& m) {
        const std::string_view arch = f_.arch();
        if (arch == "llama") {
            hp.arch = Arch::Llama;
        } else if (arch == "qwen2") {
            hp.arch = Arch::Qwen2;
        } else if (arch == "deepseek2") {
            hp.arch = Arch::DeepSeek2;
        } else if (arch.empty()) {
            problem("missing key 'general.architecture'");
            return;
        } else {
            problem(fmt::format("unsupported architecture '{}' (llama, qwen2 and deepseek2 are)",
                                arch));
            return;
        }
        prefix_ = std::string(arch) + ".";
        read_common(hp);
        if (hp.arch == Arch::DeepSeek2) read_deepseek2(hp);
        if (!problems.empty()) return;  // shapes below depend on the numbers above

        bind_global(hp, m);
        if (!problems.empty()) return;
        m.layers_.resize(static_cast<size_t>(hp.n_layer));
        for (int64_t il = 0; il < hp.n_layer; ++il) {
            if (hp.arch == Arch::DeepSeek2) {
                bind_deepseek2_layer(hp, il, m.layers_[static_cast<size_t>(il)]);
            } else {
                bind_dense_layer(hp, il, m.layers_[static_cast<size_t>(il)]);
            }
        }
        for (const gguf::Tensor& t : f_.tensors()) {
            if (!bound_.count(t.name)) problem(fmt::format("unexpected tensor '{}'", t.name));
        }
    }

  private:
    void problem(std::string msg) { problems.push_back(std::move(msg)); }

    std::string key(std::string_view k) const { return prefix_ + std::string(k); }

    // Reads a positive count; a missing or wrong-typed key becomes a problem and yields 0.
    int64_t count(std::string_view k, std::optional<int64_t> fallback = std::nullopt,
                  bool allow_zero = false) {
        const std::string name = key(k);
        if (!f_.has(name)) {
            if (fallback) return *fallback;
            problem(fmt::format("missing key '{}'", name));
            return 0;
        }
        try {
            const uint64_t v = f_.get_u64(name);
            if ((v == 0 && !allow_zero) || v > (1ull << 40)) {
                problem(fmt::format("key '{}' is {}, which is not a usable size", name, v));
                return 0;
            }
            return static_cast<int64_t>(v);
        } catch (const Error& e) {
            problem(strip_path(e.what()));
            return 0;
        }
    }

    float real(std::string_view k, float fallback) {
        const std::string name = key(k);
        try {
            return f_.get_f32_or(name, fallback);
        } catch (const Error& e) {
            problem(strip_path(e.what()));
            return fallback;
        }
    }

    // gguf::File errors start with the path; problems are listed under the path already.
    std::string strip_path(const std::string& msg) const {
        const std::string head = f_.path() + ": ";
        return msg.starts_with(head) ? msg.substr(head.size()) : msg;
    }

    void read_common(HParams& hp) {
        hp.n_embd = count("embedding_length");
        hp.n_layer = count("block_count");
        hp.n_head = count("attention.head_count");
        hp.n_ctx_train = count("context_length", int64_t{0}, true);
        hp.rms_eps = real("attention.layer_norm_rms_epsilon", 0.0f);
        if (!(hp.rms_eps > 0.0f && hp.rms_eps < 1.0f)) {
            problem(fmt::format("key '{}' is {}, expected a small positive number",
                                key("attention.layer_norm_rms_epsilon"), hp.rms_eps));
        }
        hp.rope_base = real("rope.freq_base", 10000.0f);
        if (!(hp.rope_base > 0.0f))
            problem(fmt::format("key '{}' is not positive", key("rope.freq_base")));
        hp.n_ff = count("feed_forward_length",
                        hp.arch == Arch::DeepSeek2 ? std::optional<int64_t>(0) : std::nullopt,
                        hp.arch == Arch::DeepSeek2);
        if (hp.n_layer > 4096)
            problem(fmt::format("key '{}' is {}, too many layers", key("block_count"), hp.n_layer));

        // RoPE scaling: rope.scaling.type, or the older rope.scale_linear.
        try {
            const std::string_view type = f_.get_str_or(key("rope.scaling.type"), "none");
            if (type == "none") {
                hp.scaling = RopeScaling::None;
            } else if (type == "linear") {
                hp.scaling = RopeScaling::Linear;
            } else if (type == "yarn") {
                hp.scaling = RopeScaling::Yarn;
            } else {
                problem(fmt::format("key '{}' is '{}' (none, linear and yarn are supported)",
                                    key("rope.scaling.type"), type));
            }
        } catch (const Error& e) {
            problem(strip_path(e.what()));
        }
        hp.rope_factor = real("rope.scaling.factor", real("rope.scale_linear", 1.0f));
        if (hp.rope_factor == 0.0f) hp.rope_factor = 1.0f;
        if (f_.has(key("rope.scale_linear")) && !f_.has(key("rope.scaling.type")))
            hp.scaling = RopeScaling::Linear;
        if (!(hp.rope_factor > 0.0f))
            problem(fmt::format("key '{}' is not positive", key("rope.scaling.factor")));
        hp.rope_orig_ctx = count("rope.scaling.original_context_length", hp.n_ctx_train, true);
        hp.yarn_beta_fast = real("rope.scaling.yarn_beta_fast", 32.0f);
        hp.yarn_beta_slow = real("rope.scaling.yarn_beta_slow", 1.0f);
        hp.yarn_log_mul = real("rope.scaling.yarn_log_multiplier", 0.0f);
        hp.rope_attn_factor = real("rope.scaling.attn_factor", 1.0f);
        if (hp.scaling == RopeScaling::Yarn && hp.rope_orig_ctx == 0)
            problem(fmt::format("YaRN scaling needs '{}'",
                                key("rope.scaling.original_context_length")));

        if (hp.arch == Arch::DeepSeek2 || hp.n_head == 0 || hp.n_embd == 0) return;
        hp.n_head_kv = count("attention.head_count_kv", hp.n_head);
        if (hp.n_head_kv && hp.n_head % hp.n_head_kv != 0) {
            problem(
                fmt::format("{} heads cannot be shared by {} KV heads", hp.n_head, hp.n_head_kv));
        }
        std::optional<int64_t> default_dim;
        if (hp.n_embd % hp.n_head == 0) default_dim = hp.n_embd / hp.n_head;
        hp.head_dim = count("attention.key_length", default_dim);
        const int64_t v_dim = count("attention.value_length", hp.head_dim);
        if (v_dim != hp.head_dim) {
            problem(fmt::format("key_length {} differs from value_length {}", hp.head_dim, v_dim));
        }
        hp.n_rot = count("rope.dimension_count", hp.head_dim);
        if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
            problem(fmt::format("key '{}' is {}; expected an even number up to the head size {}",
                                key("rope.dimension_count"), hp.n_rot, hp.head_dim));
        }
    }

    void read_deepseek2(HParams& hp) {
        hp.n_head_kv = 1;
        hp.q_lora_rank = count("attention.q_lora_rank", int64_t{0}, true);
        hp.kv_lora_rank = count("attention.kv_lora_rank");
        hp.qk_rope = count("rope.dimension_count");
        hp.n_rot = hp.qk_rope;
        if (hp.qk_rope % 2 != 0)
            problem(fmt::format("key '{}' is odd", key("rope.dimension_count")));
        // Files with the _mla keys hold the absorbed sizes in key_length / value_length; per-head
        // sizes are in the _mla keys. Older files hold the per-head sizes directly.
        if (f_.has(key("attention.key_length_mla"))) {
            const int64_t k_mla = count("attention.key_length_mla");
            hp.v_head = count("attention.value_length_mla");
            hp.qk_nope = k_mla - hp.qk_rope;
            const int64_t k_abs = count("attention.key_length", hp.kv_lora_rank + hp.qk_rope);
            const int64_t v_abs = count("attention.value_length", hp.kv_lora_rank);
            if (k_abs != hp.kv_lora_rank + hp.qk_rope || v_abs != hp.kv_lora_rank) {
                problem(
                    fmt::format("MLA key/value lengths {}/{} differ from kv_lora_rank+rope {}/{}",
                                k_abs, v_abs, hp.kv_lora_rank + hp.qk_rope, hp.kv_lora_rank));
            }
        } else {
            hp.qk_nope = count("attention.key_length") - hp.qk_rope;
            hp.v_head = count("attention.value_length");
        }
        if (hp.qk_nope <= 0 && problems.empty())
            problem(fmt::format("key length leaves no room beside {} rope dims", hp.qk_rope));
        hp.head_dim = hp.qk_nope + hp.qk_rope;

        hp.n_dense_lead = count("leading_dense_block_count", int64_t{0}, true);
        if (hp.n_dense_lead > hp.n_layer) {
            problem(fmt::format("{} leading dense blocks in a model of {} blocks", hp.n_dense_lead,
                                hp.n_layer));
        }
        if (hp.n_dense_lead > 0 && hp.n_ff == 0)
            problem(fmt::format("missing key '{}'", key("feed_forward_length")));
        if (hp.n_dense_lead == hp.n_layer) return;  // no MoE blocks
        hp.n_expert = count("expert_count");
        hp.n_expert_used = count("expert_used_count");
        hp.n_expert_shared = count("expert_shared_count", int64_t{0}, true);
        hp.n_ff_exp = count("expert_feed_forward_length");
        hp.n_group = std::max<int64_t>(1, count("expert_group_count", int64_t{1}, true));
        hp.n_group_used = std::max<int64_t>(1, count("expert_group_used_count", int64_t{1}, true));
        hp.weights_scale = real("expert_weights_scale", 1.0f);
        if (hp.weights_scale == 0.0f) hp.weights_scale = 1.0f;
        try {
            hp.weights_norm = f_.get_bool_or(key("expert_weights_norm"), false);
        } catch (const Error& e) {
            problem(strip_path(e.what()));
        }
        const int64_t gating = count("expert_gating_func", int64_t{1}, true);
        if (gating == 1 || gating == 0) {
            hp.gating = Gating::Softmax;  // 0 = unset in older files: softmax
        } else if (gating == 2) {
            hp.gating = Gating::Sigmoid;
        } else {
            problem(fmt::format("key '{}' is {} (1 softmax, 2 sigmoid)", key("expert_gating_func"),
                                gating));
        }
        if (hp.n_expert_used > hp.n_expert) {
            problem(fmt::format("{} experts used per token but only {} exist", hp.n_expert_used,
                                hp.n_expert));
        }
        if (hp.n_expert % hp.n_group != 0 || hp.n_group_used > hp.n_group) {
            problem(fmt::format("{} experts cannot form {} groups with {} used", hp.n_expert,
                                hp.n_group, hp.n_group_used));
        } else if (hp.n_expert_used > hp.n_group_used * (hp.n_expert / hp.n_group)) {
            problem(fmt::format("{} experts used per token but the {} chosen groups hold only {}",
                                hp.n_expert_used, hp.n_group_used,
                                hp.n_group_used * (hp.n_expert / hp.n_group)));
        }
    }

    // Binds a tensor, checking its shape and that its type can be computed.
    const gguf::Tensor* bind(const std::string& name, std::initializer_list<int64_t> shape,
                             bool required = true) {
        const gguf::Tensor* t = f_.find_tensor(name);
        if (!t) {
            if (required) problem(fmt::format("missing tensor '{}'", name));
            return nullptr;
        }
        bound_.insert(t->name);
        bool same = static_cast<size_t>(t->n_dims) == shape.size();
        size_t d = 0;
        for (int64_t ne : shape) same = same && t->ne[d++] == ne;
        if (!same) {
            std::string want = "[";
            d = 0;
            for (int64_t ne : shape) want += fmt::format("{}{}", d++ ? ", " : "", ne);
            problem(fmt::format("tensor '{}' has shape {}, expected {}]", name, t->shape_string(),
                                want));
        }
        if (!quant::traits(t->type).supported) {
            problem(fmt::format("tensor '{}' has type {}, which Strata cannot compute with", name,
                                quant::type_name(t->type)));
        }
        return t;
    }

    // Norms, biases and the router stay float.
    const gguf::Tensor* bind_f32(const std::string& name, std::initializer_list<int64_t> shape,
                                 bool required = true) {
        const gguf::Tensor* t = bind(name, shape, required);
        if (t && t->type != quant::Type::F32) {
            problem(fmt::format("tensor '{}' has type {}, expected F32", name,
                                quant::type_name(t->type)));
        }
        return t;
    }

    void bind_global(HParams& hp, Model& m) {
        const gguf::Tensor* embd = f_.find_tensor("token_embd.weight");
        if (!embd) {
            problem("missing tensor 'token_embd.weight'");
            return;
        }
        hp.n_vocab = embd->ne[1];
        m.token_embd = bind("token_embd.weight", {hp.n_embd, hp.n_vocab});
        if (f_.has(key("vocab_size"))) {
            const int64_t v = count("vocab_size");
            if (v != hp.n_vocab) {
                problem(fmt::format("key '{}' is {} but token_embd.weight has {} rows",
                                    key("vocab_size"), v, hp.n_vocab));
            }
        }
        m.output_norm = bind_f32("output_norm.weight", {hp.n_embd});
        m.output = bind("output.weight", {hp.n_embd, hp.n_vocab}, false);
        if (!m.output) m.output = m.token_embd;  // tied embeddings
        if (hp.arch == Arch::Llama) {
            m.rope_freqs = bind_f32("rope_freqs.weight", {hp.n_rot / 2}, false);
            hp.has_rope_freqs = m.rope_freqs != nullptr;
        }
    }

    static std::string blk(int64_t il, std::string_view name) {
        return fmt::format("blk.{}.{}.weight", il, name);
    }

    void bind_dense_layer(const HParams& hp, int64_t il, LayerWeights& l) {
        const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
        l.attn_norm = bind_f32(blk(il, "attn_norm"), {hp.n_embd});
        l.attn_q = bind(blk(il, "attn_q"), {hp.n_embd, q_dim});
        l.attn_k = bind(blk(il, "attn_k"), {hp.n_embd, kv_dim});
        l.attn_v = bind(blk(il, "attn_v"), {hp.n_embd, kv_dim});
        l.attn_output = bind(blk(il, "attn_output"), {q_dim, hp.n_embd});
        // Qwen2 has Q/K/V biases; llama files may carry them too (some fine-tunes do).
        const bool need_bias = hp.arch == Arch::Qwen2;
        l.attn_q_bias = bind_f32(fmt::format("blk.{}.attn_q.bias", il), {q_dim}, need_bias);
        l.attn_k_bias = bind_f32(fmt::format("blk.{}.attn_k.bias", il), {kv_dim}, need_bias);
        l.attn_v_bias = bind_f32(fmt::format("blk.{}.attn_v.bias", il), {kv_dim}, need_bias);
        l.ffn_norm = bind_f32(blk(il, "ffn_norm"), {hp.n_embd});
        l.ffn_gate = bind(blk(il, "ffn_gate"), {hp.n_embd, hp.n_ff});
        l.ffn_up = bind(blk(il, "ffn_up"), {hp.n_embd, hp.n_ff});
        l.ffn_down = bind(blk(il, "ffn_down"), {hp.n_ff, hp.n_embd});
    }

    void bind_deepseek2_layer(HParams& hp, int64_t il, LayerWeights& l) {
        const int64_t q_head = hp.qk_nope + hp.qk_rope;
        l.attn_norm = bind_f32(blk(il, "attn_norm"), {hp.n_embd});
        if (hp.q_lora_rank > 0) {
            l.attn_q_a = bind(blk(il, "attn_q_a"), {hp.n_embd, hp.q_lora_rank});
            l.attn_q_a_norm = bind_f32(blk(il, "attn_q_a_norm"), {hp.q_lora_rank});
            l.attn_q_b = bind(blk(il, "attn_q_b"), {hp.q_lora_rank, hp.n_head * q_head});
        } else {
            l.attn_q = bind(blk(il, "attn_q"), {hp.n_embd, hp.n_head * q_head});
        }
        l.attn_kv_a_mqa = bind(blk(il, "attn_kv_a_mqa"), {hp.n_embd, hp.kv_lora_rank + hp.qk_rope});
        l.attn_kv_a_norm = bind_f32(blk(il, "attn_kv_a_norm"), {hp.kv_lora_rank});
        // Split MLA tensors (current converters) or the legacy combined attn_kv_b.
        if (il == 0) hp.mla_split = f_.find_tensor(blk(0, "attn_k_b")) != nullptr;
        if (hp.mla_split) {
            l.attn_k_b = bind(blk(il, "attn_k_b"), {hp.qk_nope, hp.kv_lora_rank, hp.n_head});
            l.attn_v_b = bind(blk(il, "attn_v_b"), {hp.kv_lora_rank, hp.v_head, hp.n_head});
        } else {
            l.attn_kv_b =
                bind(blk(il, "attn_kv_b"), {hp.kv_lora_rank, hp.n_head * (hp.qk_nope + hp.v_head)});
        }
        l.attn_output = bind(blk(il, "attn_output"), {hp.n_head * hp.v_head, hp.n_embd});
        l.ffn_norm = bind_f32(blk(il, "ffn_norm"), {hp.n_embd});
        if (!hp.is_moe_layer(il)) {
            l.ffn_gate = bind(blk(il, "ffn_gate"), {hp.n_embd, hp.n_ff});
            l.ffn_up = bind(blk(il, "ffn_up"), {hp.n_embd, hp.n_ff});
            l.ffn_down = bind(blk(il, "ffn_down"), {hp.n_ff, hp.n_embd});
            return;
        }
        l.ffn_gate_inp = bind_f32(blk(il, "ffn_gate_inp"), {hp.n_embd, hp.n_expert});
        l.exp_probs_b = bind_f32(fmt::format("blk.{}.exp_probs_b.bias", il), {hp.n_expert}, false);
        l.ffn_gate_exps = bind(blk(il, "ffn_gate_exps"), {hp.n_embd, hp.n_ff_exp, hp.n_expert});
        l.ffn_up_exps = bind(blk(il, "ffn_up_exps"), {hp.n_embd, hp.n_ff_exp, hp.n_expert});
        l.ffn_down_exps = bind(blk(il, "ffn_down_exps"), {hp.n_ff_exp, hp.n_embd, hp.n_expert});
        if (hp.n_expert_shared > 0) {
            const int64_t ff_sh = hp.n_ff_exp * hp.n_expert_shared;
            l.ffn_gate_shexp = bind(blk(il, "ffn_gate_shexp"), {hp.n_embd, ff_sh});
            l.ffn_up_shexp = bind(blk(il, "ffn_up_shexp"), {hp.n_embd, ff_sh});
            l.ffn_down_shexp = bind(blk(il, "ffn_down_shexp"), {ff_sh, hp.n_embd});
        }
    }

    const gguf::File& f_;
    std::string prefix_;
    std::set<std::string_view> bound_;
};

std::vector<std::string> Model::validate(const gguf::File& file) {
    Model m;
    Binder b(file);
    b.run(m.hp_, m);
    return std::move(b.problems);
}

Model Model::load(gguf::File file) {
    Model m;
    m.file_ = std::make_unique<gguf::File>(std::move(file));
    Binder b(*m.file_);
    b.run(m.hp_, m);
    if (!b.problems.empty()) {
        const size_t more = b.problems.size() - 1;
        fail("{}: {}{}", m.file_->path(), b.problems.front(),
             more ? fmt::format(" (and {} more problem{}; see strata inspect)", more,
                                more > 1 ? "s" : "")
                  : "");
    }
    return m;
}

}  // namespace strata
