// deepseek2 (DeepSeek-V2 / V3 / R1): multi-head latent attention (MLA) and a mixture of experts.
//
// Attention. Each token's hidden state is projected to a query (through the q_lora bottleneck
// attn_q_a → attn_q_a_norm → attn_q_b, or a plain attn_q) and to a compressed KV row
// attn_kv_a_mqa = [latent (kv_lora) | k_pe (qk_rope)]. The cache keeps, per token and layer,
// only the normalised latent and the rotated k_pe, shared by all heads. Attention runs
// "absorbed": a head's no-rope query is mapped into latent space through attn_k_b, scored against
// the cached rows as one MQA key of kv_lora + qk_rope, and the weighted sum of latents is mapped
// to the head's value through attn_v_b.
//
// Files with the legacy attn_kv_b (pre-MLA converters; older published R1 files) hold, per head,
// qk_nope key rows then v_head value rows over the latent. llama.cpp decompresses every token's
// latent through it into per-head keys [k_nope | k_pe] and values and caches those: ~70 times the
// compressed row (R1: 160 KiB against 2.25 KiB per token and layer). By default Strata keeps the
// compressed cache for them too. llama.cpp's product kv_b · latent converts the latent to kv_b's
// partner format (simd/matmul.h), so the cache keeps the latent rounded through that format,
// plus what converting it again would not give back: for a Q4_1 / Q5_1 kv_b the Q8_1 blocks'
// half-precision sums (kv_lora / 32 floats), for a K-quant kv_b the Q8_K blocks' scales
// (kv_lora / 256; R1: 2.26 KiB per token and layer). A batch then runs one of two ways, whichever
// costs fewer multiply-adds:
//  - decompressed (a prompt's batches): every visible position's partner-format latent is
//    rebuilt from the cache, multiplied through attn_kv_b and attended per head, for this batch
//    only; this is llama.cpp's computation, bit for bit;
//  - absorbed (decoding): as for split files, with k_b the transposed key rows of attn_kv_b
//    (copied at load, absorbed_views) and v_b its value rows; llama.cpp's numbers at the
//    rounding of quantized activations, of the order by which llama.cpp's own logits move
//    with flash attention on (tests/mla_legacy_test.cpp).
// MlaLegacy::PerHead caches per head as llama.cpp does, bit for bit in every step.
// RoPE (YaRN) rotates only the last qk_rope dims of each query head and k_pe, adjacent pairs.
//
// FFN. The first n_dense_lead blocks are dense SwiGLU; the rest route each token to n_used of
// n_expert SwiGLU experts (router.h) and add the shared experts' output.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <optional>

#include "offload/expert_cache.h"
#include "runtime/arch/archs.h"
#include "runtime/arch/attention.h"
#include "runtime/arch/common.h"
#include "runtime/arch/products.h"
#include "runtime/arch/router.h"
#include "runtime/arch/segmented.h"
#include "runtime/arch/tap.h"
#include "simd/float_order.h"
#include "simd/parallel.h"
#include "simd/repack.h"

namespace strata::arch {
namespace {

struct MlaLayer {
    std::vector<float> attn_norm;  // (n_embd)
    bool q_lora = false;
    simd::Matrix wq;                // no q_lora: [n_embd, n_head · (qk_nope + qk_rope)]
    simd::Matrix wq_a;              // [n_embd, q_lora]
    std::vector<float> q_a_norm;    // (q_lora)
    simd::Matrix wq_b;              // [q_lora, n_head · (qk_nope + qk_rope)]
    simd::Matrix wkv_a;             // [n_embd, kv_lora + qk_rope]
    std::vector<float> kv_a_norm;   // (kv_lora)
    std::vector<simd::Matrix> k_b;  // per head: [qk_nope, kv_lora], query → latent space
    std::vector<simd::Matrix> v_b;  // per head: [kv_lora, v_head], latent → value
    simd::Matrix wkv_b;             // legacy files: [kv_lora, n_head · (qk_nope + v_head)], per
                                    // head qk_nope key rows then v_head value rows
    std::vector<uint8_t> k_b_rows;  // legacy files, compressed cache: k_b's rows (absorbed_views)
    simd::Matrix wo;                // [n_head · v_head, n_embd]
    std::vector<float> ffn_norm;    // (n_embd)

    bool moe = false;
    Ffn dense;                      // leading dense blocks
    simd::Matrix router;            // [n_embd, n_expert]
    std::vector<float> probs_bias;  // (n_expert) selection bias, or empty
    std::vector<Ffn> experts;       // per expert: [n_embd, n_ff_exp] ×2, [n_ff_exp, n_embd]
    bool shared = false;
    Ffn shared_ffn;  // [n_embd, n_ff_exp · n_shared] ...
};

class DeepSeek2Forward final : public SegmentedForward {
  public:
    DeepSeek2Forward(const Model& model, MlaLegacy mla_legacy)
        : SegmentedForward(model.hparams().n_vocab),
          model_(model),
          hp_(model.hparams()),
          per_head_(!hp_.mla_split && mla_legacy == MlaLegacy::PerHead),
          router_(RouterConfig::from(hp_)),
          head_(model) {
        rope_ = rope_params(model, ops::RopeLayout::Adjacent);
        kq_scale_ = mla_attention_scale(hp_);
        layers_.resize(static_cast<size_t>(hp_.n_layer));
        for (int64_t il = 0; il < hp_.n_layer; ++il) bind(il);
        if (hp_.n_expert > 0) {
            routes_.resize(static_cast<size_t>(hp_.n_layer));
            for (int64_t il = 0; il < hp_.n_layer; ++il)
                if (hp_.is_moe_layer(il))
                    routes_[static_cast<size_t>(il)].assign(static_cast<size_t>(hp_.n_expert), 0);
        }
        // Legacy files: room after the latent for what rebuilding its partner-format blocks
        // exactly needs (round_latents), in every layer's rows: a Q8_1 block's sum correction
        // (Q4_1 / Q5_1 kv_b), a Q8_K block's float scale (the K-quants).
        for (const MlaLayer& L : layers_) {
            if (hp_.mla_split || per_head_) break;
            n_extra_ = std::max(n_extra_, extra_slots(quant::traits(L.wkv_b.type).partner));
        }
    }

    void use_expert_cache(offload::ExpertCache* cache, bool regroup) override {
        cache_ = cache;
        regroup_slots_ = regroup;
    }

    const std::vector<std::vector<uint64_t>>& routing_counts() const override { return routes_; }

    // The buffers below at n rows, floats unless said: the residual stream, its normalised copy
    // and the block output; queries (and q_lora's), the compressed rows, absorbed queries and
    // attention-weighted latents of every head, the heads' outputs; routing; the chosen experts'
    // outputs twice (picks order and slots), the shared experts'; the FFN intermediates of every
    // expert row or of the dense FFN (gate, up, their product, and its conversion); the inputs'
    // conversions (about a byte per element each, a few formats); the last row's logits. Legacy
    // files add the decompressed keys and values of a batch (at most kMaxDecompressedBytes).
    uint64_t workspace_bytes(int64_t n_rows, int64_t n_ctx) const override {
        const auto n = static_cast<double>(n_rows);
        const auto n_head = static_cast<double>(hp_.n_head), embd = double(hp_.n_embd);
        const double k = static_cast<double>(router_.n_used);
        const double lat_w = static_cast<double>(hp_.kv_lora_rank + n_extra_);
        const double row = lat_w + static_cast<double>(hp_.qk_rope);
        const double q_dim = n_head * static_cast<double>(hp_.qk_nope + hp_.qk_rope);
        double floats =
            n * (3 * embd + q_dim + double(hp_.q_lora_rank) + row + n_head * row + n_head * lat_w +
                 n_head * double(hp_.v_head) + double(hp_.n_expert) + k + 3 * k * embd);
        const double ffn_rows_width =
            std::max((n * k + n) * static_cast<double>(hp_.n_ff_exp), n * double(hp_.n_ff));
        floats += 3.25 * ffn_rows_width;
        floats += static_cast<double>(n_vocab_);
        double bytes = 4 * floats + 4 * n * embd * 1.25 + 2 * n * k * embd * 1.25;
        if (per_head_ || !hp_.mla_split) {
            const double kvb = static_cast<double>(n_ctx) * n_head *
                               static_cast<double>(2 * hp_.qk_nope + hp_.qk_rope + 2 * hp_.v_head) *
                               4;
            bytes += std::min(kvb, kMaxDecompressedBytes);
        }
        return static_cast<uint64_t>(bytes);
    }

    // One compressed row per token, and its latent again transposed (one row of positions per
    // latent element), the layout in which attention's weighted sum reads it: keeping both costs
    // the latent's size once more and saves transposing the layer's whole cache on every call.
    // Legacy files run per head: per-head keys and values.
    KvLayout kv_layout() const override {
        if (per_head_)
            return {hp_.n_layer, hp_.n_head * (hp_.qk_nope + hp_.qk_rope), hp_.n_head * hp_.v_head};
        const int64_t lat_w = hp_.kv_lora_rank + n_extra_;
        return {hp_.n_layer, lat_w + hp_.qk_rope, lat_w};
    }

  private:
    void pass(std::span<const int32_t> tokens, std::span<const Segment> segs, int64_t n_out,
              float* logits) override {
        const auto n = static_cast<int64_t>(tokens.size());
        const int64_t n_embd = hp_.n_embd;
        float* x = grow(x_, n * n_embd);
        float* xn = grow(xn_, n * n_embd);
        float* out = grow(out_, n * n_embd);
        for (int64_t t = 0; t < n; ++t)
            mm_.embed_row(*model_.token_embd, tokens[t], x + t * n_embd);
        const std::vector<float> tables = rope_tables(rope_, segs);
        int64_t first = 0;  // first row carried through the last block's feed-forward part
        tap_next_pass();

        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            const MlaLayer& L = layers_[static_cast<size_t>(il)];
            tap_set_layer(il);
            first = residual_block(
                il, il == hp_.n_layer - 1, n, n_out, n_embd, hp_.rms_eps, L.attn_norm, L.ffn_norm,
                x, xn, out,
                [&](const float* in, float* res) { attention(L, il, in, segs, tables, res); },
                [&](const float* in, int64_t m, float* res) {
                    if (L.moe) {
                        moe(L, il, in, m, res);
                    } else {
                        mm_.ffn(L.dense, in, m, res, ffn_);
                    }
                });
        }
        if (n_out > 0) head_.run(x + first * n_embd, n_embd, n_out, logits, xn_, act_, mm_);
        // A decompressed batch's keys and values are not kept for decoding (up to
        // kMaxDecompressedBytes).
        wide_.reset();
        std::vector<float>().swap(kvb_);
    }

    void bind(int64_t il) {
        const LayerWeights& l = model_.layers()[static_cast<size_t>(il)];
        MlaLayer& L = layers_[static_cast<size_t>(il)];
        L.attn_norm = f32_copy(l.attn_norm);
        L.q_lora = l.attn_q_a != nullptr;
        if (L.q_lora) {
            L.wq_a = matrix(*l.attn_q_a);
            L.q_a_norm = f32_copy(l.attn_q_a_norm);
            L.wq_b = matrix(*l.attn_q_b);
        } else {
            L.wq = matrix(*l.attn_q);
        }
        L.wkv_a = matrix(*l.attn_kv_a_mqa);
        L.kv_a_norm = f32_copy(l.attn_kv_a_norm);
        if (hp_.mla_split) {
            for (int64_t h = 0; h < hp_.n_head; ++h) {
                L.k_b.push_back(matrix_slice(*l.attn_k_b, h));
                L.v_b.push_back(matrix_slice(*l.attn_v_b, h));
            }
        } else {
            L.wkv_b = matrix(*l.attn_kv_b);
            if (!per_head_) absorbed_views(L);
        }
        L.wo = matrix(*l.attn_output);
        L.ffn_norm = f32_copy(l.ffn_norm);
        L.moe = hp_.is_moe_layer(il);
        if (!L.moe) {
            L.dense = {matrix(*l.ffn_gate), matrix(*l.ffn_up), matrix(*l.ffn_down)};
            return;
        }
        L.router = matrix(*l.ffn_gate_inp);
        L.probs_bias = f32_copy(l.exp_probs_b);
        for (int64_t e = 0; e < hp_.n_expert; ++e) {
            L.experts.push_back({matrix_slice(*l.ffn_gate_exps, e), matrix_slice(*l.ffn_up_exps, e),
                                 matrix_slice(*l.ffn_down_exps, e)});
        }
        L.shared = l.ffn_gate_shexp != nullptr;
        if (L.shared) {
            L.shared_ffn = {matrix(*l.ffn_gate_shexp), matrix(*l.ffn_up_shexp),
                            matrix(*l.ffn_down_shexp)};
        }
    }

    // out (rows, n_embd) = MLA of the normalised rows xn; writes each segment's tokens' rows
    // into its cache.
    void attention(const MlaLayer& L, int64_t il, const float* xn, std::span<const Segment> segs,
                   const std::vector<float>& tables, float* out) {
        if (per_head_) {
            attention_decompressed(L, il, xn, segs, tables, out);
            return;
        }
        const int64_t n = segs.back().row0 + segs.back().n;
        const int64_t n_embd = hp_.n_embd, n_head = hp_.n_head;
        const int64_t nope = hp_.qk_nope, rope = hp_.qk_rope, lora = hp_.kv_lora_rank;
        const int64_t q_head = nope + rope, q_dim = n_head * q_head;
        const int64_t kv_w = lora + rope;       // attn_kv_a_mqa's output
        const int64_t lat_w = lora + n_extra_;  // the latent (legacy files: and what it keeps)

        in_.set(xn, n_embd, n_embd, n);
        float* kv = grow(kv_, n * kv_w);
        float* q = queries(L, n, {&L.wkv_a, &in_.for_weights(L.wkv_a), kv, kv_w});
        tap("q", il, q, n * q_dim);
        tap("kv_cmpr_pe", il, kv, n * kv_w);

        // Cache rows: [rms_norm(latent) | legacy files: kept partner-format data (round_latents)
        // | rope(k_pe)]; queries' rope parts rotated in place.
        for (const Segment& sg : segs) {
            KvCache& cache = *sg.cache;
            for (int64_t i = 0; i < sg.n; ++i) {
                const int64_t t = sg.row0 + i;
                const float* table = tables.data() + t * rope_.n_rot;
                for (int64_t h = 0; h < n_head; ++h)
                    ops::rope_apply(rope_, table, q + t * q_dim + h * q_head + nope);
                float* c = cache.k(il, sg.pos0 + i);
                ops::rms_norm(kv + t * kv_w, L.kv_a_norm.data(), lora, hp_.rms_eps, c);
                std::memcpy(c + lat_w, kv + t * kv_w + lora, sizeof(float) * rope);
                ops::rope_apply(rope_, table, c + lat_w);
            }
            if (!hp_.mla_split) round_latents(L, il, sg.pos0, sg.n, cache);
            // The latents (as rounded) again, transposed, for attention's weighted sum.
            for (int64_t i = 0; i < lat_w; ++i) {
                float* column = cache.v_col(il, i);
                for (int64_t t = 0; t < sg.n; ++t)
                    column[sg.pos0 + t] = cache.k(il, sg.pos0 + t)[i];
            }
        }
        const int64_t v_dim = n_head * hp_.v_head;
        float* heads = grow(heads_, n * v_dim);
        // Legacy files: a prompt's first batches run decompressed, per segment.
        decompress_.assign(segs.size(), 0);
        bool any_absorbed = false;
        for (size_t k = 0; k < segs.size(); ++k) {
            decompress_[k] =
                !hp_.mla_split && decompressing_is_cheaper(segs[k].n, segs[k].pos0) ? 1 : 0;
            any_absorbed = any_absorbed || decompress_[k] == 0;
        }
        if (any_absorbed) attend_absorbed(L, il, q, segs, heads);
        for (size_t k = 0; k < segs.size(); ++k) {
            const Segment& sg = segs[k];
            if (decompress_[k])
                attend_decompressed(L, il, q + sg.row0 * q_dim, sg.n, sg.pos0, *sg.cache,
                                    heads + sg.row0 * v_dim);
        }
        tap("kqv_out", il, heads, n * v_dim);
        mm_.matmul(L.wo, heads, v_dim, n, out, n_embd, act_);
    }

    // Legacy files on the compressed cache: k_b and v_b for absorbed attention, from attn_kv_b.
    // v_b_h is a view of the head's value rows. k_b_h, the transpose of its key rows (kv_lora rows
    // of qk_nope), is a copy made here: in the weight type for F32 and BF16 (exact), else in Q8_0
    // (F16 when qk_nope is not a multiple of 32); R1: 8.5 MiB per layer, 0.5 GiB in all. Decoding
    // thus multiplies as for split files, at the rounding of quantized activations; the cache's
    // extra slots after the latent get no weight.
    void absorbed_views(MlaLayer& L) const {
        const int64_t n_head = hp_.n_head, nope = hp_.qk_nope, v_head = hp_.v_head;
        const int64_t lora = hp_.kv_lora_rank, per_head = nope + v_head;
        quant::Type type = L.wkv_b.type;
        if (type != quant::Type::F32 && type != quant::Type::BF16)
            type = nope % quant::QK8_0 == 0 ? quant::Type::Q8_0 : quant::Type::F16;
        const size_t row_bytes = quant::row_bytes(type, nope);
        L.k_b_rows.resize(row_bytes * static_cast<size_t>(n_head * lora));
        std::vector<float> keys(static_cast<size_t>(nope * lora));  // one head's key rows
        std::vector<float> column(static_cast<size_t>(nope));
        for (int64_t h = 0; h < n_head; ++h) {
            for (int64_t i = 0; i < nope; ++i) {
                quant::dequantize_row(L.wkv_b.type, L.wkv_b.row(h * per_head + i),
                                      keys.data() + i * lora, lora);
            }
            uint8_t* dst = L.k_b_rows.data() + static_cast<size_t>(h * lora) * row_bytes;
            for (int64_t j = 0; j < lora; ++j) {
                for (int64_t i = 0; i < nope; ++i)
                    column[static_cast<size_t>(i)] = keys[i * lora + j];
                quant::quantize_row(type, column.data(), dst + static_cast<size_t>(j) * row_bytes,
                                    nope);
            }
            L.k_b.push_back({dst, type, nope, lora, row_bytes});
            L.v_b.push_back(L.wkv_b.rows(h * per_head + nope, v_head));
        }
    }

    // heads (rows, n_head · v_head) = absorbed attention of the rotated queries q over the
    // compressed cache rows of layer il, for the segments not decompressed (decompress_); the
    // other segments' rows are left for attend_decompressed.
    void attend_absorbed(const MlaLayer& L, int64_t il, const float* q,
                         std::span<const Segment> segs, float* heads) {
        const int64_t n = segs.back().row0 + segs.back().n;
        const int64_t n_head = hp_.n_head, nope = hp_.qk_nope, rope = hp_.qk_rope;
        const int64_t lora = hp_.kv_lora_rank, q_head = nope + rope, q_dim = n_head * q_head;
        const int64_t lat_w = lora + n_extra_, row = lat_w + rope, v_dim = n_head * hp_.v_head;
        // Absorbed queries, (n, n_head, row): [k_b_h · q_nope | q_pe], every head's product a
        // task of one job, each converting its own strided slice of the queries.
        float* qabs = grow(qcat_, n * n_head * row);
        if (head_act_.size() < static_cast<size_t>(n_head))
            head_act_.resize(static_cast<size_t>(n_head));
        // Heads on a device go one after another, each product a job of its own there.
        const bool kb_here = !mm_.on_device(L.k_b.front());
        const auto absorb = [&](int64_t h) {
            const simd::Matrix& k_b = L.k_b[static_cast<size_t>(h)];
            simd::Activations& a = head_act_[static_cast<size_t>(h)];
            a.quantize(quant::traits(k_b.type).partner, q + h * q_head, q_dim, nope, n);
            // The reference multiplies a strided view of the queries here.
            if (kb_here) {
                simd::matmul_rows(k_b, 0, k_b.n_out, a, qabs + h * row, n_head * row,
                                  mm_.path(simd::Path::Strided));
            } else {
                mm_.matmul(k_b, a, qabs + h * row, n_head * row, simd::Path::Strided);
            }
            for (int64_t t = 0; t < n; ++t) {
                float* qt = qabs + (t * n_head + h) * row;
                std::fill_n(qt + lora, n_extra_, 0.0f);
                std::memcpy(qt + lat_w, q + t * q_dim + h * q_head + nope, sizeof(float) * rope);
            }
        };
        const int64_t kb_work = n * n_head * nope * lora;
        if (kb_here) {
            simd::parallel_for(n_head, kb_work, absorb);
        } else {
            for (int64_t h = 0; h < n_head; ++h) absorb(h);
        }
        tap("Qcur", il, qabs, n * n_head * row);
        AttentionShape shape;
        shape.n_head = n_head;
        shape.n_head_kv = 1;
        shape.k_dim = row;
        shape.v_dim = lat_w;
        shape.scale = kq_scale_;
        float* lat = grow(lat_, n * n_head * lat_w);
        const bool all_absorbed =
            std::find(decompress_.begin(), decompress_.end(), 1) == decompress_.end();
        if (all_absorbed) attend_segments(shape, segs, il, qabs, n_head * row, lat, n_head * lat_w);
        for (size_t k = 0; k < segs.size() && !all_absorbed; ++k) {
            const Segment& sg = segs[k];
            float* lat_rows = lat + sg.row0 * n_head * lat_w;
            if (decompress_[k]) {  // its heads come from attend_decompressed
                std::fill_n(lat_rows, sg.n * n_head * lat_w, 0.0f);
                continue;
            }
            attend(shape, *sg.cache, il, sg.pos0, sg.n, qabs + sg.row0 * n_head * row, n_head * row,
                   lat_rows, n_head * lat_w);
        }

        // Per head, latent → value through v_b, one job; heads concatenated for attn_output.
        const bool vb_here = !mm_.on_device(L.v_b.front());
        const auto value = [&](int64_t h) {
            const simd::Matrix& v_b = L.v_b[static_cast<size_t>(h)];
            simd::Activations& a = head_act_[static_cast<size_t>(h)];
            a.quantize(quant::traits(v_b.type).partner, lat + h * lat_w, n_head * lat_w, lora, n);
            if (vb_here) {
                simd::matmul_rows(v_b, 0, v_b.n_out, a, heads + h * hp_.v_head, v_dim,
                                  mm_.path(simd::Path::Gemm));
            } else {
                mm_.matmul(v_b, a, heads + h * hp_.v_head, v_dim);
            }
        };
        if (vb_here) {
            simd::parallel_for(n_head, n * n_head * lora * hp_.v_head, value);
        } else {
            for (int64_t h = 0; h < n_head; ++h) value(h);
        }
    }

    // Legacy files: the latents of cache rows pos0 … pos0 + n - 1 rounded in place as llama.cpp's
    // attn_kv_b product rounds its input: converted to kv_b's partner format (Q8_K for the
    // K-quants, Q8_0 / Q8_1 for the legacy types, F16 / BF16; F32 unchanged) and back. k_pe is
    // not part of that product and stays as it is. After the latent the row keeps what converting
    // the rounded latent again would not give back (partner_rows): a Q8_1 block's s (its sum
    // rounded to half precision, which the Q4_1 / Q5_1 products use in place of the exact sum),
    // a Q8_K block's float scale d (d·q rounds in float, so d is not found again). The other
    // formats convert back exactly (Q8_0's d is a half float: d·q is exact in float).
    void round_latents(const MlaLayer& L, int64_t il, int64_t pos0, int64_t n, KvCache& cache) {
        const quant::Type partner = quant::traits(L.wkv_b.type).partner;
        const int64_t lora = hp_.kv_lora_rank;
        if (n_extra_ > 0) {
            for (int64_t t = 0; t < n; ++t)
                std::fill_n(cache.k(il, pos0 + t) + lora, n_extra_, 0.0f);
        }
        if (partner == quant::Type::F32) return;
        // A layer's rows of consecutive positions are consecutive, one cache row apart.
        act_.quantize(partner, cache.k(il, pos0), lora + n_extra_ + hp_.qk_rope, lora, n);
        const quant::DequantizeFn back = quant::traits(partner).dequantize;
        for (int64_t t = 0; t < n; ++t) {
            float* c = cache.k(il, pos0 + t);
            back(act_.row(t), c, lora);
            if (partner == quant::Type::Q8_K) {
                const auto* blocks = static_cast<const quant::block_q8_K*>(act_.row(t));
                for (int64_t b = 0; b < lora / quant::QK_K; ++b) c[lora + b] = blocks[b].d;
            }
            if (partner == quant::Type::Q8_1) {
                const auto* blocks = static_cast<const quant::block_q8_1*>(act_.row(t));
                for (int64_t b = 0; b < lora / quant::QK8_1; ++b)
                    c[lora + b] = fp16_to_fp32(blocks[b].s);
            }
        }
    }

    // Legacy files: the latents of cache positions 0 … n_rows - 1 of layer il in kv_b's partner
    // format, into act_, byte for byte the rows llama.cpp's attn_kv_b product converted: the
    // rounded latent converts back to the same blocks, then the kept s (Q8_1) or d (Q8_K) is
    // put back (round_latents).
    void partner_rows(const MlaLayer& L, int64_t il, int64_t n_rows, const KvCache& cache) {
        const quant::Type partner = quant::traits(L.wkv_b.type).partner;
        const int64_t lora = hp_.kv_lora_rank;
        act_.quantize(partner, cache.k(il, 0), lora + n_extra_ + hp_.qk_rope, lora, n_rows);
        if (partner != quant::Type::Q8_1 && partner != quant::Type::Q8_K) return;
        for (int64_t t = 0; t < n_rows; ++t) {
            const float* c = cache.k(il, t);
            if (partner == quant::Type::Q8_K) {
                // Not the converted block: when a block's largest magnitude is reached by two
                // values of opposite signs, converting again may pick the other as its maximum
                // and negate d and every q. Rebuilt from the kept d instead: c = fl(d·q), so
                // c / d rounds to q.
                auto* blocks = static_cast<quant::block_q8_K*>(act_.mutable_row(t));
                for (int64_t b = 0; b < lora / quant::QK_K; ++b) {
                    quant::block_q8_K& blk = blocks[b];
                    const float* x = c + b * quant::QK_K;
                    blk.d = c[lora + b];
                    for (int64_t j = 0; j < quant::QK_K; ++j)
                        blk.qs[j] =
                            blk.d == 0.0f ? 0 : static_cast<int8_t>(std::lrint(x[j] / blk.d));
                    for (int64_t g = 0; g < quant::QK_K / 16; ++g) {
                        int sum = 0;
                        for (int64_t j = 0; j < 16; ++j) sum += blk.qs[g * 16 + j];
                        blk.bsums[g] = static_cast<int16_t>(sum);
                    }
                }
                continue;
            }
            auto* blocks = static_cast<quant::block_q8_1*>(act_.mutable_row(t));
            for (int64_t b = 0; b < lora / quant::QK8_1; ++b)
                blocks[b].s = fp32_to_fp16(c[lora + b]);
        }
    }

    // Floats kept after the latent in a legacy file's compressed row for a kv_b whose partner
    // format is `partner` (round_latents).
    int64_t extra_slots(quant::Type partner) const {
        if (partner == quant::Type::Q8_1) return hp_.kv_lora_rank / quant::QK8_1;
        if (partner == quant::Type::Q8_K) return hp_.kv_lora_rank / quant::QK_K;
        return 0;
    }

    // Legacy files: whether a batch of n tokens at pos0 costs fewer multiply-adds decompressed
    // (every visible position's keys and values through attn_kv_b, then attention per head)
    // than absorbed, and the decompressed keys and values fit in kMaxDecompressedBytes. That
    // holds for a prompt's first batches and not for decoding; decompressed, the batch computes
    // what llama.cpp computes, bit for bit. The choice depends on the batch and the model only,
    // never on the machine, so that a prompt gives the same logits everywhere.
    bool decompressing_is_cheaper(int64_t n, int64_t pos0) const {
        const int64_t n_used = pos0 + n, n_head = hp_.n_head;
        const int64_t nope = hp_.qk_nope, rope = hp_.qk_rope, v_head = hp_.v_head;
        const int64_t lora = hp_.kv_lora_rank, lat_w = lora + n_extra_, row = lat_w + rope;
        const double decompressed = static_cast<double>(n_used) * (nope + v_head) * lora +
                                    static_cast<double>(n) * n_used * (nope + rope + v_head);
        const double absorbed = static_cast<double>(n) * (nope + v_head) * lat_w +
                                static_cast<double>(n) * n_used * (row + lat_w);
        const double bytes =
            static_cast<double>(n_used) * n_head * (2 * (nope + v_head) + rope) * sizeof(float);
        return decompressed <= absorbed && bytes <= kMaxDecompressedBytes;
    }

    // Legacy files, a batch decompressed: heads (n, n_head · v_head) = attention of the rotated
    // queries q over every visible position's keys [k_nope | k_pe] and values, k_nope and the
    // values from attn_kv_b times the cached latents in its partner format, as llama.cpp
    // computes and caches them per head; they live in wide_ for this batch only.
    void attend_decompressed(const MlaLayer& L, int64_t il, const float* q, int64_t n, int64_t pos0,
                             const KvCache& cache, float* heads) {
        const int64_t n_used = pos0 + n, n_head = hp_.n_head;
        const int64_t nope = hp_.qk_nope, rope = hp_.qk_rope, v_head = hp_.v_head;
        const int64_t lat_w = hp_.kv_lora_rank + n_extra_, kvb_head = nope + v_head;
        partner_rows(L, il, n_used, cache);
        float* kvb = grow(kvb_, n_used * n_head * kvb_head);
        mm_.matmul(L.wkv_b, act_, kvb, n_head * kvb_head);
        const KvLayout wide{1, n_head * (nope + rope), n_head * v_head};
        if (!wide_ || wide_->n_ctx() < n_used) wide_.emplace(wide, n_used);
        for (int64_t t = 0; t < n_used; ++t)
            store_per_head(kvb + t * n_head * kvb_head, cache.k(il, t) + lat_w, *wide_, 0, t);
        attend(per_head_shape(), *wide_, 0, pos0, n, q, n_head * (nope + rope), heads,
               n_head * v_head);
    }

    // q (n, n_head · (qk_nope + qk_rope)) of the normalised rows in in_, through the q_lora
    // bottleneck or attn_q; the rope parts not yet rotated. `beside`, another product of the same
    // input (KV-A), runs in one job with the first projection.
    float* queries(const MlaLayer& L, int64_t n, const simd::Product& beside) {
        const int64_t q_dim = hp_.n_head * (hp_.qk_nope + hp_.qk_rope);
        float* q = grow(q_, n * q_dim);
        if (L.q_lora) {
            const int64_t r = L.wq_a.n_out;
            float* qa = grow(qa_, n * r);
            const simd::Product first[] = {{&L.wq_a, &in_.for_weights(L.wq_a), qa, r}, beside};
            mm_.batch(first);
            for (int64_t t = 0; t < n; ++t)
                ops::rms_norm(qa + t * r, L.q_a_norm.data(), r, hp_.rms_eps, qa + t * r);
            mm_.matmul(L.wq_b, qa, r, n, q, q_dim, act_);
        } else {
            const simd::Product first[] = {{&L.wq, &in_.for_weights(L.wq), q, q_dim}, beside};
            mm_.batch(first);
        }
        return q;
    }

    // Legacy files with MlaLegacy::PerHead, as llama.cpp runs them without MLA: kv = attn_kv_b ·
    // rms_norm(latent) gives each head's k_nope and value; the key is [k_nope | rope(k_pe)] (k_pe
    // shared by the heads), the query [q_nope | rope(q_pe)]; multi-head attention over per-head
    // cache rows.
    void attention_decompressed(const MlaLayer& L, int64_t il, const float* xn,
                                std::span<const Segment> segs, const std::vector<float>& tables,
                                float* out) {
        const int64_t n = segs.back().row0 + segs.back().n;
        const int64_t n_embd = hp_.n_embd, n_head = hp_.n_head;
        const int64_t nope = hp_.qk_nope, rope = hp_.qk_rope, lora = hp_.kv_lora_rank;
        const int64_t k_head = nope + rope, q_dim = n_head * k_head, v_head = hp_.v_head;
        const int64_t row = lora + rope, kvb_head = nope + v_head;

        in_.set(xn, n_embd, n_embd, n);
        float* kv = grow(kv_, n * row);
        float* q = queries(L, n, {&L.wkv_a, &in_.for_weights(L.wkv_a), kv, row});
        float* latent = grow(lat_, n * lora);  // (n, kv_lora) normalised
        for (int64_t t = 0; t < n; ++t) {
            const float* table = tables.data() + t * rope_.n_rot;
            for (int64_t h = 0; h < n_head; ++h)
                ops::rope_apply(rope_, table, q + t * q_dim + h * k_head + nope);
            ops::rope_apply(rope_, table, kv + t * row + lora);
            ops::rms_norm(kv + t * row, L.kv_a_norm.data(), lora, hp_.rms_eps, latent + t * lora);
        }
        float* kvb = grow(kvb_, n * n_head * kvb_head);  // (n, n_head, qk_nope + v_head)
        mm_.matmul(L.wkv_b, latent, lora, n, kvb, n_head * kvb_head, act_);
        const int64_t v_dim = n_head * v_head;
        float* heads = grow(heads_, n * v_dim);
        for (const Segment& sg : segs) {
            for (int64_t i = 0; i < sg.n; ++i) {
                const int64_t t = sg.row0 + i;
                store_per_head(kvb + t * n_head * kvb_head, kv + t * row + lora, *sg.cache, il,
                               sg.pos0 + i);
            }
        }
        attend_segments(per_head_shape(), segs, il, q, q_dim, heads, v_dim);
        tap("kqv_out", il, heads, n * v_dim);
        mm_.matmul(L.wo, heads, v_dim, n, out, n_embd, act_);
    }

    // Position pos of a per-head cache: keys [k_nope | k_pe] and values of every head, from
    // kvb (n_head, qk_nope + v_head), a token's attn_kv_b output, and its rotated k_pe.
    void store_per_head(const float* kvb, const float* k_pe, KvCache& cache, int64_t layer,
                        int64_t pos) const {
        const int64_t nope = hp_.qk_nope, rope = hp_.qk_rope, v_head = hp_.v_head;
        float* k = cache.k(layer, pos);
        for (int64_t h = 0; h < hp_.n_head; ++h) {
            const float* src = kvb + h * (nope + v_head);
            std::memcpy(k + h * (nope + rope), src, sizeof(float) * nope);
            std::memcpy(k + h * (nope + rope) + nope, k_pe, sizeof(float) * rope);
            for (int64_t i = 0; i < v_head; ++i)
                cache.v_col(layer, h * v_head + i)[pos] = src[nope + i];
        }
    }

    AttentionShape per_head_shape() const {
        AttentionShape shape;
        shape.n_head = hp_.n_head;
        shape.n_head_kv = hp_.n_head;
        shape.k_dim = hp_.qk_nope + hp_.qk_rope;
        shape.v_dim = hp_.v_head;
        shape.scale = kq_scale_;
        return shape;
    }

    // out (n, n_embd) = Σ_slots weight · expert(xn) + shared experts(xn). The chosen experts and
    // the shared ones run as batches of FFN tasks (run_ffns) over one conversion of xn: all at
    // once from the mapping, or under --ram-budget in the order the expert cache delivers them.
    void moe(const MlaLayer& L, int64_t il, const float* xn, int64_t n, float* out) {
        const int64_t n_embd = hp_.n_embd, k = router_.n_used;
        moe_in_.set(xn, n_embd, n_embd, n);
        float* logits = grow(router_logits_, n * hp_.n_expert);
        mm_.matmul(L.router, moe_in_.for_weights(L.router), logits, hp_.n_expert);
        tap("ffn_moe_logits", kTapCurrent, logits, n * hp_.n_expert);
        ids_.resize(static_cast<size_t>(n * k));
        float* weights = grow(weights_, n * k);
        const float* bias = L.probs_bias.empty() ? nullptr : L.probs_bias.data();
        for (int64_t t = 0; t < n; ++t) {
            route(router_, logits + t * hp_.n_expert, bias, ids_.data() + t * k, weights + t * k);
        }
        std::vector<uint64_t>& counted = routes_[static_cast<size_t>(il)];
        for (int64_t i = 0; i < n * k; ++i)
            ++counted[static_cast<size_t>(ids_[static_cast<size_t>(i)])];

        // Each chosen expert runs once over the tokens that chose it: picks_ lists the slots
        // (token · k + slot) by expert id, then slot, and runs_ where each expert's begin.
        picks_.resize(static_cast<size_t>(n * k));
        std::iota(picks_.begin(), picks_.end(), int64_t{0});
        std::stable_sort(picks_.begin(), picks_.end(), [&](int64_t a, int64_t b) {
            return ids_[static_cast<size_t>(a)] < ids_[static_cast<size_t>(b)];
        });
        runs_.clear();
        for (int64_t i = 0; i < n * k; ++i) {
            if (i == 0 || ids_[static_cast<size_t>(picks_[static_cast<size_t>(i)])] !=
                              ids_[static_cast<size_t>(picks_[static_cast<size_t>(i - 1)])])
                runs_.push_back(i);
        }
        runs_.push_back(n * k);
        const auto n_active = static_cast<int64_t>(runs_.size()) - 1;

        // Inputs: xn converted once; an expert's tokens gathered from it (a single token's row
        // is every expert's input as it is).
        const Ffn& any = L.experts.front();
        const simd::Activations& all_gate = moe_in_.for_weights(any.gate);
        const simd::Activations& all_up = moe_in_.for_weights(any.up);
        const bool same_partner = &all_gate == &all_up;
        if (expert_in_.size() < static_cast<size_t>(2 * n_active))
            expert_in_.resize(static_cast<size_t>(2 * n_active));
        float* res = grow(expert_out_, n * k * n_embd);  // (n · k, n_embd) by picks_ order
        // Task of active expert a with weights w; its gathered inputs live in expert_in_[2a..].
        const auto task_of = [&](int64_t a, const Ffn* w) {
            const int64_t begin = runs_[static_cast<size_t>(a)],
                          end = runs_[static_cast<size_t>(a) + 1];
            FfnTask task{w, &all_gate, &all_up, res + begin * n_embd, simd::Path::Experts};
            if (n > 1) {
                rows_.clear();
                for (int64_t i = begin; i < end; ++i)
                    rows_.push_back(picks_[static_cast<size_t>(i)] / k);
                const int64_t m = end - begin;
                simd::Activations& g = expert_in_[static_cast<size_t>(2 * a)];
                g.gather(all_gate, rows_.data(), m);
                task.in_gate = task.in_up = &g;
                if (!same_partner) {
                    simd::Activations& u = expert_in_[static_cast<size_t>(2 * a + 1)];
                    u.gather(all_up, rows_.data(), m);
                    task.in_up = &u;
                }
            }
            return task;
        };
        const auto expert_id = [&](int64_t a) {
            return ids_[static_cast<size_t>(
                picks_[static_cast<size_t>(runs_[static_cast<size_t>(a)])])];
        };
        float* sh = L.shared ? grow(shared_out_, n * n_embd) : nullptr;
        tasks_.clear();
        if (L.shared) {
            tasks_.push_back({&L.shared_ffn, &moe_in_.for_weights(L.shared_ffn.gate),
                              &moe_in_.for_weights(L.shared_ffn.up), sh, simd::Path::Gemm});
        }
        if (cache_) {
            // Experts whose slabs a placement put on a device are multiplied there; the others
            // come through the cache.
            from_cache_.clear();
            for (int64_t a = 0; a < n_active; ++a) {
                const Ffn& w = L.experts[static_cast<size_t>(expert_id(a))];
                if (on_device(w)) {
                    tasks_.push_back(task_of(a, &w));
                } else {
                    from_cache_.push_back(a);
                }
            }
            cached_experts(L, il, n, from_cache_, expert_id, task_of);
        } else {
            for (int64_t a = 0; a < n_active; ++a)
                tasks_.push_back(task_of(a, &L.experts[static_cast<size_t>(expert_id(a))]));
            mm_.ffns(tasks_, ffn_);
        }

        // Weighted outputs in their slots, then summed in selection order and the shared experts
        // added, as the reference does.
        float* slots = grow(slots_, n * k * n_embd);  // (n, k, n_embd)
        for (int64_t i = 0; i < n * k; ++i) {
            const int64_t slot = picks_[static_cast<size_t>(i)];
            const float w = weights[slot];
            const float* src = res + i * n_embd;
            float* dst = slots + slot * n_embd;
            for (int64_t j = 0; j < n_embd; ++j) dst[j] = src[j] * w;
        }
        tap("ffn_moe_weighted", kTapCurrent, slots, n * k * n_embd);
        for (int64_t t = 0; t < n; ++t) {
            float* o = out + t * n_embd;
            std::memcpy(o, slots + t * k * n_embd, sizeof(float) * n_embd);
            for (int64_t s = 1; s < k; ++s) ops::add(o, slots + (t * k + s) * n_embd, n_embd);
        }
        if (L.shared) {
            tap("ffn_moe_out", kTapCurrent, out, n * n_embd);
            tap("ffn_shexp", kTapCurrent, sh, n * n_embd);
            ops::add(out, sh, n * n_embd);
        }
    }

    // The active experts `actives` of a batch (expert_id(a), ascending ids) from the expert
    // cache, each acquired once for the whole batch, so a prompt reads each missing expert once.
    // Misses are issued as soon as the routing is known; the experts already present (and the
    // shared ones, queued in tasks_) run as one batch while the rest arrive, then the rest in
    // batches of what has arrived. In decoding, the next layer's likely experts (its router on
    // this layer's input) are read ahead. Fewer slots than experts: in waves, each released
    // before the next.
    template <class ExpertId, class TaskOf>
    void cached_experts(const MlaLayer& L, int64_t il, int64_t n, std::span<const int64_t> actives,
                        ExpertId&& expert_id, TaskOf&& task_of) {
        used_.resize(actives.size());
        for (size_t i = 0; i < actives.size(); ++i) used_[i] = expert_id(actives[i]);
        cached_.resize(actives.size());              // stable: FfnTask points into it
        bool prefetched = actives.empty() || n > 1;  // prompts route to most experts anyway
        size_t done = 0;
        while (done < used_.size()) {
            held_.clear();
            const size_t got =
                cache_->acquire(il, std::span<const int32_t>(used_).subspan(done), held_);
            if (!prefetched) {
                prefetch_next(il);
                prefetched = true;
            }
            // The experts present first (with the shared experts on the first wave), then the
            // others in batches as their reads come in: each batch is what has arrived by the
            // time the previous one is multiplied, so a prompt's reads of a layer overlap its
            // products instead of all preceding them. When nothing has arrived, block for the
            // first read issued. Every expert writes its own rows: batching changes no sum.
            for (;;) {
                const offload::ExpertHandle* first_missing = nullptr;
                for (offload::ExpertHandle& h : held_) {
                    if (h.slot < 0) continue;  // multiplied in an earlier batch
                    if (!cache_->ready(h)) {
                        if (first_missing == nullptr) first_missing = &h;
                        continue;
                    }
                    const auto i = static_cast<size_t>(
                        std::lower_bound(used_.begin(), used_.end(), h.expert) - used_.begin());
                    const int64_t a = actives[i];
                    Ffn& w = cached_[i];
                    w = cached_ffn(
                        L, il, h,
                        runs_[static_cast<size_t>(a) + 1] - runs_[static_cast<size_t>(a)]);
                    tasks_.push_back(task_of(actives[i], &w));
                    h.slot = -h.slot - 1;  // taken; restored for release below
                }
                if (!tasks_.empty()) {
                    mm_.ffns(tasks_, ffn_);
                    tasks_.clear();
                } else if (first_missing != nullptr) {
                    cache_->wait(il, *first_missing);  // throws on an I/O error
                } else {
                    break;
                }
            }
            for (offload::ExpertHandle& h : held_) h.slot = -h.slot - 1;
            cache_->release(held_);
            done += got;
        }
        if (!tasks_.empty()) mm_.ffns(tasks_, ffn_);  // the shared experts alone (no routing)
        tasks_.clear();
    }

    // Expert h's gate / up / down as views of its cache slot: the mapped views' shapes and
    // types, the slot's bytes. Slots are read in the file's layout; an expert multiplied for
    // `rows` ≥ kRegroupRows tokens is first regrouped in its slot for the interleaved kernels
    // (same bits), and keeps that layout while it stays in the cache. At fewer rows the
    // interleaved kernels gain nothing, and a decoding step should not pay for the rewrite.
    Ffn cached_ffn(const MlaLayer& L, int64_t il, const offload::ExpertHandle& h, int64_t rows) {
        const offload::ExpertData d = cache_->wait(il, h);
        Ffn w = L.experts[static_cast<size_t>(h.expert)];
        simd::Matrix* parts[offload::kExpertParts] = {&w.gate, &w.up, &w.down};
        const bool grouped = cache_->rewritten(h);
        const bool regroup = regroup_slots_ && rows >= kRegroupRows && !grouped;
        for (int p = 0; p < offload::kExpertParts; ++p) {
            simd::Matrix& m = *parts[p];
            m.data = d.part[p];
            const bool fits = simd::can_interleave(m.type, m.n_in, m.n_out);
            if (regroup && fits)
                simd::interleave_rows(m.type, const_cast<uint8_t*>(m.data), m.n_in, m.n_out);
            m.layout =
                (grouped || regroup) && fits ? simd::Layout::Interleaved16 : simd::Layout::Rows;
        }
        if (regroup) cache_->mark_rewritten(h);
        return w;
    }

    // Whether an expert's three slabs are on a device (a GPU tier's placement).
    bool on_device(const Ffn& w) const {
        return mm_.on_device(w.gate) && mm_.on_device(w.up) && mm_.on_device(w.down);
    }

    // Decoding: the next MoE layer's router applied to this layer's normalised input (moe_in_),
    // its top experts not on a device read ahead (ExpertCache scores the guess when that layer
    // routes).
    void prefetch_next(int64_t il) {
        if (il + 1 >= hp_.n_layer) return;
        const MlaLayer& next = layers_[static_cast<size_t>(il + 1)];
        if (!next.moe) return;
        const int64_t k = router_.n_used;
        float* logits = grow(guess_logits_, hp_.n_expert);
        mm_.matmul(next.router, moe_in_.for_weights(next.router), logits, hp_.n_expert);
        guess_ids_.resize(static_cast<size_t>(k));
        float* weights = grow(guess_weights_, k);
        route(router_, logits, next.probs_bias.empty() ? nullptr : next.probs_bias.data(),
              guess_ids_.data(), weights);
        // Experts a placement put on a device are multiplied there, never read into the cache.
        std::erase_if(guess_ids_,
                      [&](int32_t e) { return on_device(next.experts[static_cast<size_t>(e)]); });
        cache_->prefetch(il + 1, guess_ids_);
    }

    // Tokens an expert must be multiplied for before its cache slot is regrouped: from four
    // activation rows the interleaved kernels run about twice as fast (kernels_bench, batches of
    // 4 to 32 rows: 236-247 -> 509-520 GOP/s on Q4_K, AMD EPYC VM, 2 threads).
    static constexpr int64_t kRegroupRows = 4;

    // Legacy files: the most a batch's decompressed keys and values (and attn_kv_b's output) may
    // take; past it the batch runs absorbed (R1: about 7,000 positions). A constant, not a share
    // of this machine's memory: the choice changes the logits' rounding.
    static constexpr double kMaxDecompressedBytes = 2.0 * double(int64_t{1} << 30);

    const Model& model_;
    const HParams& hp_;
    bool per_head_ = false;  // legacy attn_kv_b file run as llama.cpp runs it (MlaLegacy::PerHead)
    int64_t n_extra_ = 0;    // compressed legacy rows: floats after the latent (round_latents)
    RouterConfig router_;
    ops::RopeParams rope_;
    float kq_scale_ = 1.0f;
    std::vector<MlaLayer> layers_;
    OutputHead head_;

    std::vector<float> x_;      // (n, n_embd) residual stream
    std::vector<float> xn_;     // (n, n_embd) normalised block input
    std::vector<float> out_;    // (n, n_embd) block output
    std::vector<float> q_;      // (n, n_head · (qk_nope + qk_rope))
    std::vector<float> qa_;     // (n, q_lora)
    std::vector<float> kv_;     // (n, kv_lora + qk_rope) before norm and rope
    std::vector<float> qcat_;   // (n, n_head, cache row) absorbed queries; per-head
                                // legacy: (n, n_head, qk_nope + v_head) decompressed keys, values
    std::vector<float> lat_;    // (n, n_head, kv_lora + n_extra_) attention-weighted latents;
                                // per-head legacy: (n, kv_lora) normalised latents
    std::vector<float> heads_;  // (n, n_head · v_head)
    std::vector<float> kvb_;    // legacy files: (positions, n_head, qk_nope + v_head) attn_kv_b
    std::optional<KvCache> wide_;  // compressed legacy files: a decompressed batch's keys, values
    std::vector<float> router_logits_;  // (n, n_expert)
    std::vector<int32_t> ids_;          // (n, n_used) chosen experts
    std::vector<float> weights_;        // (n, n_used) their weights
    std::vector<float> slots_;          // (n, n_used, n_embd) weighted expert outputs
    std::vector<int64_t> picks_;        // (n · n_used) slots by expert id, then slot
    std::vector<int64_t> runs_;         // (active experts + 1) where each expert's picks begin
    std::vector<int64_t> rows_;         // (tokens of one expert) their rows in the batch
    std::vector<float> expert_out_;     // (n · n_used, n_embd) expert outputs in picks_ order
    std::vector<float> shared_out_;     // (n, n_embd)
    std::vector<FfnTask> tasks_;        // (active experts + shared) one layer's FFN tasks
    // (n_layer)(n_expert, or empty for dense layers; no rows without routed experts) router
    // choices so far: routing_counts()
    std::vector<std::vector<uint64_t>> routes_;
    std::vector<simd::Activations> expert_in_;  // (2 · active experts) gathered gate/up inputs
    std::vector<simd::Activations> head_act_;   // (n_head) per-head k_b / v_b inputs
    SharedInput in_;                            // attention's normalised input, converted
    SharedInput moe_in_;                        // the MoE block's input, converted
    offload::ExpertCache* cache_ = nullptr;     // routed experts from here when set
    bool regroup_slots_ = false;                // cached_ffn regroups slots for batches
    std::vector<int64_t> from_cache_;           // (active experts not on a device) their indices
    std::vector<int32_t> used_;  // (active experts from the cache) their ids, ascending
    std::vector<Ffn> cached_;    // (active experts) views of their cache slots
    std::vector<offload::ExpertHandle> held_;  // experts pinned in the cache
    std::vector<float> guess_logits_;          // (n_expert) next layer's router on this input
    std::vector<int32_t> guess_ids_;           // (n_used) its choice
    std::vector<float> guess_weights_;         // (n_used)
    FfnScratch ffn_;
    simd::Activations act_;
    std::vector<char> decompress_;  // (segments) legacy files: run decompressed
};

}  // namespace

float mla_attention_scale(const HParams& hp) {
    const float ln_factor = std::log(1.0f / rope_freq_scale(hp));
    const float attn_factor_org = rope_attn_factor(hp) * (1.0f + 0.1f * ln_factor);
    const float mscale = attn_factor_org * (1.0f + 0.1f * yarn_log_mul(hp) * ln_factor);
    return mscale * mscale / std::sqrt(static_cast<float>(hp.qk_nope + hp.qk_rope));
}

std::unique_ptr<Forward> make_deepseek2_forward(const Model& model, MlaLegacy mla_legacy) {
    return std::make_unique<DeepSeek2Forward>(model, mla_legacy);
}

}  // namespace strata::arch
