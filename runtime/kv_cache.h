// The attention cache of one session: float rows per layer and position.
//
// Grouped-query models (llama, qwen2) keep per-token K rows of n_head_kv · head_dim and the
// same number of V values per token, stored transposed (one row of n_ctx positions per value
// element), as llama.cpp stores them, so that a head's weighted sum over positions is a
// contiguous dot product.
// deepseek2 (MLA) keeps one compressed row per token: the normalised latent (kv_lora_rank) and
// the rotated shared key part (qk_rope); attention reads keys and values from it through the
// absorbed projections, so the cache is a small fraction of per-head K/V.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace strata {

// How deepseek2 files with the legacy attn_kv_b (pre-split converters, e.g. the published R1
// GGUF files) keep their cache. Files with attn_k_b / attn_v_b always use the compressed one.
enum class MlaLegacy {
    // The compressed cache: kv_lora_rank + qk_rope floats per token and layer, and a few more
    // for some kv_b types (R1: 2.26 KiB). A prompt's batches decompress it and compute what
    // llama.cpp computes, bit for bit; decoding runs absorbed, at the rounding of quantized
    // activations (runtime/arch/deepseek2.cpp).
    Compressed,
    // As llama.cpp runs these files: keys and values decompressed per head and cached,
    // n_head · (qk_nope + qk_rope + v_head) floats per token and layer (R1: 160 KiB, about 10 MB
    // per token over 61 layers). Bit for bit with llama.cpp.
    PerHead,
};

struct KvLayout {
    int64_t n_layer = 0;
    int64_t k_width = 0;  // floats per token per layer in the K (or compressed) rows
    int64_t v_width = 0;  // floats per token per layer in the V rows; 0 when there are none (MLA)

    // Bytes of a cache of n_ctx positions; throws strata::Error when the size overflows.
    size_t bytes(int64_t n_ctx) const;
};

class KvCache {
  public:
    // Allocates n_ctx positions; throws strata::Error naming --ctx when n_ctx is not positive or
    // the cache would not fit in this machine's memory.
    KvCache(const KvLayout& layout, int64_t n_ctx);

    const KvLayout& layout() const { return layout_; }
    int64_t n_ctx() const { return n_ctx_; }
    size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

    float* k(int64_t layer, int64_t pos) { return k_.data() + offset(layer, pos, layout_.k_width); }
    const float* k(int64_t layer, int64_t pos) const {
        return k_.data() + offset(layer, pos, layout_.k_width);
    }
    // Value element i (of v_width) of every position: n_ctx floats.
    float* v_col(int64_t layer, int64_t i) { return v_.data() + column(layer, i); }
    const float* v_col(int64_t layer, int64_t i) const { return v_.data() + column(layer, i); }

  private:
    size_t offset(int64_t layer, int64_t pos, int64_t width) const {
        return (static_cast<size_t>(layer) * static_cast<size_t>(n_ctx_) +
                static_cast<size_t>(pos)) *
               static_cast<size_t>(width);
    }

    size_t column(int64_t layer, int64_t i) const {
        return (static_cast<size_t>(layer) * static_cast<size_t>(layout_.v_width) +
                static_cast<size_t>(i)) *
               static_cast<size_t>(n_ctx_);
    }

    KvLayout layout_;
    int64_t n_ctx_ = 0;
    std::vector<float> k_;  // (n_layer, n_ctx, k_width)
    std::vector<float> v_;  // (n_layer, v_width, n_ctx) transposed values; empty for MLA
};

}  // namespace strata
