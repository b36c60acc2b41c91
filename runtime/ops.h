// Element-wise and row operations of the forward pass, computed the way ggml's CPU backend
// computes them (same accumulation precision, same order of rounding steps), so that F32 models
// agree with llama.cpp to float rounding.
#pragma once

#include <cstdint>
#include <vector>

namespace strata::ops {

// y = x / sqrt(mean(x²) + eps) * w. The sum of squares is kept in double and the scale applied
// before the weight, as ggml_rms_norm followed by ggml_mul does. y may alias x.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y);

// out[i] = silu(gate[i]) * up[i] over one row of n, as ggml_vec_swiglu_f32: the vector exp
// for whole groups of 16, the C library's for the rest. out may alias gate or up.
void swiglu(const float* gate, const float* up, int64_t n, float* out);

// Softmax of a row of n, as ggml_vec_soft_max_f32: exp(x - max) with the vector exp for whole
// groups of 16 (each group summed in lane order), the C library's for the rest; the sum in
// double; every entry scaled by the float of 1 / sum.
void softmax(float* x, int64_t n);

// The same over a row of n_total entries of which only the first n are scores and the rest are
// masked (-inf): an attention row of llama.cpp's cache view. The masked entries take part in the
// vector groups as zeros, so the first n come out as ggml computes them; x holds only n floats.
void softmax_masked(float* x, int64_t n, int64_t n_total);

float sigmoid(float x);

// y[i] += x[i]
void add(float* y, const float* x, int64_t n);

// --- RoPE ------------------------------------------------------------------------------------
// Which elements form a rotated pair: llama and deepseek2 rotate (2i, 2i+1); qwen2 (NEOX)
// rotates (i, i + n_rot/2).
enum class RopeLayout { Adjacent, Neox };

// Everything ggml_rope_ext takes besides the data. The table of a position depends on these only.
struct RopeParams {
    int64_t n_rot = 0;  // rotated dims (even); the rest of a head passes through
    RopeLayout layout = RopeLayout::Adjacent;
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;   // 1 / context-extension factor
    float ext_factor = 0.0f;   // YaRN ramp weight: 1 with YaRN, 0 otherwise
    float attn_factor = 1.0f;  // cos/sin magnitude before the YaRN correction
    float beta_fast = 32.0f;
    float beta_slow = 1.0f;
    int64_t n_ctx_orig = 0;           // training context YaRN's correction dims refer to
    std::vector<float> freq_factors;  // llama3 rope_freqs: one divisor per pair, or empty
};

// YaRN correction dims [low, high] in pair units: low rounded down, high up, clamped to
// [0, n_rot - 1] (ggml_rope_yarn_corr_dims).
void yarn_corr_dims(const RopeParams& p, float dims[2]);

// cos/sin table of one position: table[2i] = cos θ_i · m, table[2i + 1] = sin θ_i · m, n_rot
// floats. θ is built by repeated multiplication in float, as ggml_rope_cache_init does, so that
// long contexts round like the reference.
void rope_table(const RopeParams& p, int64_t pos, float* table);

// Rotates the first n_rot elements of x in place with a table from rope_table().
void rope_apply(const RopeParams& p, const float* table, float* x);

}  // namespace strata::ops
