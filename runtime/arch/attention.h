// Causal softmax attention of a batch of query rows over the KV cache.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/kv_cache.h"

namespace strata::arch {

struct AttentionShape {
    int64_t n_head = 0;
    int64_t n_head_kv = 0;  // query head h reads KV head h / (n_head / n_head_kv)
    int64_t k_dim = 0;      // key (and query) length per head
    int64_t v_dim = 0;      // value length per head
    float scale = 1.0f;     // applied to q·k before the softmax
};

// The number of cache positions llama.cpp's attention reads when n_used are filled: its KV cache
// view grows in steps of 256 (llama_kv_cache::get_n_kv), and the positions past n_used are
// masked. The view length decides the softmax's vector groups and the product's lane layout.
int64_t kv_view_length(int64_t n_used);

// For query rows t < n at positions pos0 + t: out head h = Σ_j softmax_j(scale · q_h · k_j) v_j
// over cache positions j ≤ pos0 + t of `layer`, values read from the cache's transposed rows
// (v_col; MLA keeps its latent there too, so no call transposes the cache). q head h starts at
// q + t·q_stride + h·k_dim, out head h at out + t·out_stride + h·v_dim. (token, head) pairs are
// the tasks of one job of the pass's team.
//
// Rounded as llama.cpp's non-flash attention over its cache view of n_kv = kv_view_length(pos0 +
// n) positions, later ones masked: q·k as ggml_vec_dot_f32; the softmax of the whole masked row
// (ops::softmax_masked); the weighted sum of values as the reference's matrix product over n_kv
// positions (tinyBLAS for batches of two or more rows when v_dim is a multiple of 4,
// ggml_vec_dot_f32 otherwise; masked terms are zeros).
void attend(const AttentionShape& s, const KvCache& cache, int64_t layer, int64_t pos0, int64_t n,
            const float* q, int64_t q_stride, float* out, int64_t out_stride);

// One query of each of several sequences (Forward::run_batch): query t at position rows[t].pos
// of its own cache, q head h at q + t·q_stride + h·k_dim, out head h at out + t·out_stride +
// h·v_dim. Each query's result is bit for bit attend() of that query alone (n = 1); all queries
// share three jobs of the pass's team instead of three each.
struct DecodeRow {
    const KvCache* cache = nullptr;
    int64_t pos = 0;
};
void attend_decode(const AttentionShape& s, std::span<const DecodeRow> rows, int64_t layer,
                   const float* q, int64_t q_stride, float* out, int64_t out_stride);

}  // namespace strata::arch
