// Random weights. Values are drawn with splitmix64 (one 64-bit draw per value) and shaped into
// an Irwin–Hall(4) variate: the sum of four 16-bit uniforms, rescaled to unit variance. It is
// close to normal, bounded at ±3.46σ (no outliers that would wreck a quantization block) and
// needs no log or trig per value; drawing stays a small part of writing a quantized model
// (F16 bench layers: ~8 ns per weight in all, against ~80 ns for the reference Q4_K quantizer).
#include "synth/weights.h"

#include <omp.h>

#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "runtime/error.h"
#include "synth/random_blocks.h"

namespace strata::synth {
namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;  // splitmix64's increment (2^64 / φ)

uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h;
}

// The random stream of one tensor (by name, so that a tensor keeps its values whatever else
// changes in the file).
uint64_t tensor_key(uint64_t seed, std::string_view name) {
    return mix64(seed * kGamma + fnv1a(name));
}

// Draws n unit-variance values for row `row` of the tensor keyed `key`.
void draw_row(uint64_t key, int64_t row, float* out, int64_t n) {
    const float kScale = std::sqrt(3.0f) / 65536.0f;  // Irwin–Hall(4) has variance 4/12
    uint64_t state = mix64(key ^ mix64(static_cast<uint64_t>(row) + 1));
    for (int64_t i = 0; i < n; ++i) {
        state += kGamma;
        const uint64_t r = mix64(state);
        // Four 16-bit uniforms, each centred on its cell (+0.5), so the sum has mean exactly 2.
        const uint32_t sum = static_cast<uint32_t>((r & 0xFFFF) + ((r >> 16) & 0xFFFF) +
                                                   ((r >> 32) & 0xFFFF) + (r >> 48));
        out[i] = (static_cast<float>(sum) + 2.0f - 2.0f * 65536.0f) * kScale;
    }
}

// Produces row `r` of a tensor as floats.
class RowSource {
  public:
    RowSource(const Spec& spec, const TensorPlan& t) : t_(t), key_(tensor_key(spec.seed, t.name)) {
        const HParams& hp = spec.hp;
        if (t.init == Init::RopeFreqs) {
            fixed_ =
                llama3_rope_factors(spec.llama3.value_or(Llama3Rope{}), hp.n_rot, hp.rope_base);
            if (static_cast<int64_t>(fixed_.size()) != t.ne[0])
                fail("tensor '{}': {} rope factors for a row of {}", t.name, fixed_.size(),
                     t.ne[0]);
        }
        if (t.init == Init::MlaK || t.init == Init::MlaV) {
            // The layer's attn_kv_b, [kv_lora, n_head·(nope+v)], drawn as the legacy file has it.
            nope_ = hp.qk_nope;
            v_ = hp.v_head;
            kv_lora_ = hp.kv_lora_rank;
            const int64_t rows = hp.n_head * (nope_ + v_);
            const uint64_t kv_key =
                tensor_key(spec.seed, fmt::format("blk.{}.attn_kv_b.weight", t.layer));
            fixed_.resize(static_cast<size_t>(rows * kv_lora_));
#pragma omp parallel for schedule(static) if (rows > 256)
            for (int64_t r = 0; r < rows; ++r) {
                float* row = fixed_.data() + r * kv_lora_;
                draw_row(kv_key, r, row, kv_lora_);
                for (int64_t c = 0; c < kv_lora_; ++c) row[c] *= t.scale;
            }
        }
    }

    void row(int64_t r, float* out) const {
        const int64_t n = t_.ne[0];
        switch (t_.init) {
            case Init::Normal:
                draw_row(key_, r, out, n);
                for (int64_t i = 0; i < n; ++i) out[i] *= t_.scale;
                return;
            case Init::NormWeight:
                draw_row(key_, r, out, n);
                for (int64_t i = 0; i < n; ++i) out[i] = 1.0f + out[i] * t_.scale;
                return;
            case Init::RopeFreqs:
                std::copy(fixed_.begin(), fixed_.end(), out);
                return;
            case Init::MlaK: {
                // kv_b viewed as [n_head][nope+v][kv_lora]; k_b[h][c][j] = kv_b[h][j][c].
                const int64_t h = r / kv_lora_, c = r % kv_lora_;
                const float* head = fixed_.data() + h * (nope_ + v_) * kv_lora_;
                for (int64_t j = 0; j < nope_; ++j) out[j] = head[j * kv_lora_ + c];
                return;
            }
            case Init::MlaV: {
                // v_b[h][i][:] = kv_b[h][nope + i][:].
                const int64_t h = r / v_, i = r % v_;
                const float* src = fixed_.data() + (h * (nope_ + v_) + nope_ + i) * kv_lora_;
                std::copy(src, src + kv_lora_, out);
                return;
            }
        }
    }

  private:
    const TensorPlan& t_;
    uint64_t key_;
    std::vector<float> fixed_;  // rope factors (n_rot/2), or the layer's kv_b (rows × kv_lora)
    int64_t nope_ = 0, v_ = 0, kv_lora_ = 0;
};

}  // namespace

std::vector<float> llama3_rope_factors(const Llama3Rope& rope, int64_t n_rot, float freq_base) {
    // Computed in double as the converter computes it in Python, then stored as float32.
    const double orig = static_cast<double>(rope.orig_ctx);
    const double low_wavelen = orig / rope.low_freq_factor;
    const double high_wavelen = orig / rope.high_freq_factor;
    std::vector<float> out;
    for (int64_t i = 0; i < n_rot; i += 2) {
        const double freq = 1.0 / std::pow(static_cast<double>(freq_base),
                                           static_cast<double>(i) / static_cast<double>(n_rot));
        const double wavelen = 2.0 * std::numbers::pi / freq;
        double f = 1.0;
        if (wavelen > low_wavelen) {
            f = rope.factor;
        } else if (wavelen >= high_wavelen) {
            const double smooth = (orig / wavelen - rope.low_freq_factor) /
                                  (rope.high_freq_factor - rope.low_freq_factor);
            f = 1.0 / ((1.0 - smooth) / rope.factor + smooth);
        }
        out.push_back(static_cast<float>(f));
    }
    return out;
}

void require_quantizer(quant::Type type) {
    if (quant::traits(type).quantize) return;
    // quant::quantize_row names the type in its error; one zero block is enough to ask.
    const quant::TypeTraits& tt = quant::traits(type);
    std::vector<float> zeros(static_cast<size_t>(tt.block_size ? tt.block_size : 1), 0.0f);
    std::vector<uint8_t> block(tt.block_bytes ? tt.block_bytes : 1);
    quant::quantize_row(type, zeros.data(), block.data(), static_cast<int64_t>(zeros.size()));
    fail("cannot quantize to type {}", quant::type_name(type));
}

bool fills_random(const Spec& spec, const TensorPlan& t) {
    // Norm gains (1 + noise) and rope factors keep their exact values; they are small.
    const bool random_init = t.init == Init::Normal || t.init == Init::MlaK || t.init == Init::MlaV;
    return spec.fill == Fill::Random && random_init && has_random_blocks(t.type);
}

void fill_tensor(const Spec& spec, const TensorPlan& t, uint8_t* dst, size_t nbytes) {
    if (nbytes != t.bytes)
        fail("tensor '{}': {} bytes to fill, {} planned", t.name, nbytes, t.bytes);
    if (fills_random(spec, t)) {
        // Each row its own stream (as draw_row), so the bytes do not depend on the threads. The
        // split MLA tensors are drawn on their own here, not as views of one attn_kv_b.
        const uint64_t key = tensor_key(spec.seed, t.name) ^ 0x5EED0F0B10C5ull;
        const int64_t rows = t.n_rows();
        const int64_t blocks = t.ne[0] / quant::traits(t.type).block_size;
        const size_t row_bytes = quant::row_bytes(t.type, t.ne[0]);
#pragma omp parallel for schedule(dynamic, 64) if (rows * t.ne[0] >= (1 << 18))
        for (int64_t r = 0; r < rows; ++r) {
            random_blocks(t.type, mix64(key ^ mix64(static_cast<uint64_t>(r) + 1)), t.scale,
                          dst + static_cast<size_t>(r) * row_bytes, blocks);
        }
        return;
    }
    require_quantizer(t.type);
    const quant::QuantizeFn quantize = quant::traits(t.type).quantize;
    const RowSource source(spec, t);
    const int64_t n0 = t.ne[0], rows = t.n_rows();
    const size_t row_bytes = quant::row_bytes(t.type, n0);
    // Scratch rows allocated up front: nothing may throw inside the parallel region.
    const int threads = omp_get_max_threads();
    std::vector<float> scratch(static_cast<size_t>(threads) * static_cast<size_t>(n0));
#pragma omp parallel for schedule(dynamic, 16) if (rows * n0 >= (1 << 16))
    for (int64_t r = 0; r < rows; ++r) {
        float* row =
            scratch.data() + static_cast<size_t>(omp_get_thread_num()) * static_cast<size_t>(n0);
        source.row(r, row);
        quantize(row, dst + static_cast<size_t>(r) * row_bytes, n0);
    }
}

std::vector<float> tensor_values(const Spec& spec, const TensorPlan& t) {
    const RowSource source(spec, t);
    const int64_t n0 = t.ne[0];
    std::vector<float> out(static_cast<size_t>(t.n_elements()));
    for (int64_t r = 0; r < t.n_rows(); ++r) source.row(r, out.data() + r * n0);
    return out;
}

}  // namespace strata::synth
