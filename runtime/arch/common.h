// Pieces every architecture's forward pass shares: weight views, the token embedding, RoPE
// settings from the hyperparameters, the SwiGLU feed-forward block and the output head.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "runtime/arch/tap.h"
#include "runtime/gguf.h"
#include "runtime/kv_cache.h"
#include "runtime/model.h"
#include "runtime/ops.h"
#include "simd/matmul.h"

namespace strata::arch {

class Products;

// A 2-D weight [n_in, n_out] as n_out rows; throws strata::Error naming the tensor when Strata
// cannot multiply its type.
simd::Matrix matrix(const gguf::Tensor& t);
// Slice i2 of a 3-D weight [n_in, n_out, n] (one expert, or one head of attn_k_b / attn_v_b).
simd::Matrix matrix_slice(const gguf::Tensor& t, int64_t i2);

// A copy of an F32 vector tensor (norm weights, biases); empty for a null tensor.
std::vector<float> f32_copy(const gguf::Tensor* t);

// Row `token` of the embedding table as floats (dequantized for quantized tables).
void embed_row(const gguf::Tensor& t, int32_t token, float* out);

// 1 / the context-extension factor, or 1 without rope scaling.
float rope_freq_scale(const HParams& hp);
// mscale_all_dim: the YaRN log multiplier llama.cpp uses (deepseek2 only; 0 elsewhere).
float yarn_log_mul(const HParams& hp);
// The cos/sin magnitude llama.cpp hands the rope kernel, before the kernel's own YaRN factor.
float rope_attn_factor(const HParams& hp);

// RoPE as llama.cpp sets it up for this model: frequency scale, YaRN ramp and magnitude,
// llama3 frequency factors. `layout` is the architecture's pair layout.
ops::RopeParams rope_params(const Model& model, ops::RopeLayout layout);

// Rows [row0, row0 + n) of a pass: one sequence's tokens at positions pos0 … pos0 + n - 1 of
// its own cache. A prompt's batch is one segment; Forward::run_batch makes one per row.
struct Segment {
    KvCache* cache = nullptr;
    int64_t pos0 = 0;
    int64_t row0 = 0;
    int64_t n = 0;
};

// attend() of every segment's rows over its own cache (query rows at q + row·q_stride, output
// rows at out + row·out_stride); segments of one row each (run_batch) go as one attend_decode.
struct AttentionShape;
void attend_segments(const AttentionShape& shape, std::span<const Segment> segments, int64_t layer,
                     const float* q, int64_t q_stride, float* out, int64_t out_stride);

// Cos/sin tables of every row of the segments, in row order: (rows, n_rot).
std::vector<float> rope_tables(const ops::RopeParams& p, std::span<const Segment> segments);

// How many rows of a batch of n go through the last block's feed-forward part and the output
// head: all of them, the last one, or none (a batch whose logits nobody wants), as llama.cpp
// selects its output rows (inp_out_ids) after the last block's attention. Besides saving the
// work, this keeps float weights summed as the reference sums them for that many rows.
int64_t output_rows(int64_t n, bool all_logits, bool logits_wanted);

// A buffer of at least n floats, grown on demand and reused across calls.
float* grow(std::vector<float>& v, int64_t n);

// One pre-norm residual block over the rows x (n, n_embd), as every architecture runs it:
// x += attention(rms_norm(x) · attn_norm), then x += ffn(rms_norm(x) · ffn_norm) over rows
// [first, n). `first` is 0 except in the last block, where only the n_out output rows go on past
// the attention (output_rows); it is returned. attention(xn, out) writes n rows of out;
// ffn(xn, m, out) writes m rows. xn and out are (n, n_embd) work buffers.
template <class Attention, class FeedForward>
int64_t residual_block(int64_t il, bool last, int64_t n, int64_t n_out, int64_t n_embd, float eps,
                       const std::vector<float>& attn_norm, const std::vector<float>& ffn_norm,
                       float* x, float* xn, float* out, Attention&& attention, FeedForward&& ffn) {
    for (int64_t t = 0; t < n; ++t)
        ops::rms_norm(x + t * n_embd, attn_norm.data(), n_embd, eps, xn + t * n_embd);
    tap("attn_norm", il, xn, n * n_embd);
    attention(xn, out);
    tap("attn_out", il, out, n * n_embd);
    const int64_t first = last ? n - n_out : 0;
    const int64_t m = n - first;
    float *xr = x + first * n_embd, *xnr = xn + first * n_embd, *outr = out + first * n_embd;
    ops::add(xr, outr, m * n_embd);
    tap("ffn_inp", il, xr, m * n_embd);
    for (int64_t t = 0; t < m; ++t)
        ops::rms_norm(xr + t * n_embd, ffn_norm.data(), n_embd, eps, xnr + t * n_embd);
    tap("ffn_norm", il, xnr, m * n_embd);
    if (m > 0) ffn(xnr, m, outr);
    tap("ffn_out", il, outr, m * n_embd);
    ops::add(xr, outr, m * n_embd);
    tap("l_out", il, xr, m * n_embd);
    return first;
}

// gate/up/down of a SwiGLU feed-forward block: down(silu(gate x) · up x).
struct Ffn {
    simd::Matrix gate;  // [n_embd, n_ff]
    simd::Matrix up;    // [n_embd, n_ff]
    simd::Matrix down;  // [n_ff, n_embd]
};

// One input's rows converted to each partner format asked for, each once: the products that read
// the same rows (router, Q and KV-A, gate and up, every expert of a layer) share the conversion.
class SharedInput {
  public:
    // Forgets earlier conversions; x (n_rows, n_in) row t at x + t * x_stride, kept by the caller
    // while this is used.
    void set(const float* x, int64_t x_stride, int64_t n_in, int64_t n_rows);
    // The rows in `partner`, converted on the first call after set().
    const simd::Activations& as(quant::Type partner);
    // The rows in the partner format of weights w.
    const simd::Activations& for_weights(const simd::Matrix& w) {
        return as(quant::traits(w.type).partner);
    }

  private:
    const float* x_ = nullptr;
    int64_t x_stride_ = 0, n_in_ = 0, n_rows_ = 0;
    int n_used_ = 0;  // conversions made since set()
    // One slot per partner format there is (F32, F16, BF16, Q8_0, Q8_1, Q8_K).
    std::array<simd::Activations, 6> conv_;   // (n_rows, n_in) each, in conv_type_'s format
    std::array<quant::Type, 6> conv_type_{};  // their formats
};

// One feed-forward evaluation of a batched job (run_ffns): its weights, its input rows already
// converted, where its output goes.
struct FfnTask {
    const Ffn* w = nullptr;
    const simd::Activations* in_gate = nullptr;  // (m, n_embd) in gate's partner format
    const simd::Activations* in_up = nullptr;    // (m, n_embd) in up's partner format
    float* out = nullptr;                        // (m, n_embd) output rows
    simd::Path path = simd::Path::Gemm;
};

// Work buffers of FFN evaluations, reused across layers.
struct FfnScratch {
    std::vector<float> hidden;  // (Σ m · n_ff) gate rows, turned into silu(gate) · up in place
    std::vector<float> up;      // (Σ m · n_ff)
    std::vector<simd::Activations> mid;  // per task: (m, n_ff) hidden in down's partner format
    SharedInput input;                   // run_ffn's input
};

// Evaluates every task as three jobs of the pass's team, so that no thread idles while another
// finishes an expert: (task × chunk of n_ff rows) of gate and up, each chunk's silu(gate) · up
// computed by the task that made it; the hidden rows converted (one task per FFN); then (task ×
// chunk of n_embd rows) of down. Results equal evaluating the tasks one after another.
void run_ffns(std::span<const FfnTask> tasks, FfnScratch& s);

// out (n_rows, n_embd) = FFN of x (n_rows, n_embd), the input converted once for gate and up.
// `path`: how the reference multiplies (simd::Path::Experts for experts, which it runs through
// ggml_mul_mat_id).
void run_ffn(const Ffn& w, const float* x, int64_t n_rows, float* out, FfnScratch& s,
             simd::Path path = simd::Path::Gemm);

// Final norm and lm_head of the output rows: logits (n_out_rows, n_vocab) of x rows
// [first, first + n_out_rows) of (.., n_embd).
struct OutputHead {
    std::vector<float> norm;  // (n_embd)
    simd::Matrix output;      // [n_embd, n_vocab]
    float eps = 1e-5f;

    explicit OutputHead(const Model& model);
    void run(const float* x, int64_t n_embd, int64_t n_rows, float* logits, std::vector<float>& tmp,
             simd::Activations& act, const Products& mm) const;
};

}  // namespace strata::arch
