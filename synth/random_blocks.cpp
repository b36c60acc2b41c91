// Random quantized blocks. Levels come from bit fields summed inside 64-bit words (SWAR): two
// uniform fields of width w plus one bit (or plus a constant 1 for the symmetric types) give a
// triangular, bell-like level distribution without carries between fields. Three draws of a
// wyrand generator make 16 four-bit levels, so the generator costs well under a nanosecond per
// weight. Block layouts and level meanings are those of simd/quant.h (simd/ref/kquants_levels.h
// for the K-quants' bit planes).
#include "synth/random_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/error.h"
#include "simd/fp16.h"

namespace strata::synth {
namespace {

using quant::block_q2_K, quant::block_q4_0, quant::block_q4_1, quant::block_q4_K;
using quant::block_q5_0, quant::block_q5_1, quant::block_q5_K, quant::block_q6_K;
using quant::block_q8_0, quant::QK5_0, quant::QK5_1, quant::QK8_0, quant::QK_K;

__extension__ typedef unsigned __int128 u128;  // wyrand's 64×64 → 128-bit product

// wyrand: one multiply per 64 random bits, passes BigCrush; plenty for weights.
class Rng {
  public:
    explicit Rng(uint64_t seed) : s_(seed) {}
    uint64_t next() {
        s_ += 0xA0761D6478BD642Full;
        const u128 t = static_cast<u128>(s_) * (s_ ^ 0xE7037ED1A0B428DBull);
        return static_cast<uint64_t>(t >> 64) ^ static_cast<uint64_t>(t);
    }
    // A factor in [0.75, 1.25): fitted scales of random sub-blocks vary about this much.
    float jitter() { return 0.75f + static_cast<float>(next() >> 56) * (0.5f / 256.0f); }
    // n such factors, eight from each draw.
    void jitters(float* out, int n) {
        for (int i = 0; i < n; i += 8) {
            uint64_t r = next();
            for (int k = 0; k < 8 && i + k < n; ++k, r >>= 8)
                out[i + k] = 0.75f + static_cast<float>(r & 0xFF) * (0.5f / 256.0f);
        }
    }

  private:
    uint64_t s_;
};

constexpr uint64_t k01 = 0x0101010101010101ull;  // one 1 in every byte

// A bell-shaped level in every field of a word: (a & half) + (b & half) + (c & one) where `half`
// holds the largest value of each half-range field and `one` its lowest bit (or, with
// `plus_one`, a constant 1 in every field: the symmetric types then centre on their zero level).
struct Levels {
    uint64_t half;  // e.g. 0x77.. : fields 0..7
    uint64_t one;   // e.g. 0x11.. : one bit per field
    bool plus_one;  // add `one` always instead of a random bit
    uint64_t word(Rng& r) const {
        const uint64_t a = r.next() & half, b = r.next() & half;
        return a + b + (plus_one ? one : r.next() & one);
    }
};

// The moments of a + b + c, a and b uniform on 0..h, c a fair bit (or 1).
struct Moments {
    double mean, sd;
};
Moments moments(int h, bool plus_one) {
    const double var_uniform = (static_cast<double>(h + 1) * (h + 1) - 1.0) / 12.0;
    const double mean = static_cast<double>(h) + (plus_one ? 1.0 : 0.5);
    const double var = 2.0 * var_uniform + (plus_one ? 0.0 : 0.25);
    return {mean, std::sqrt(var)};
}

// Fills n bytes (a multiple of 8) with bell-shaped levels in fields as `lv` says.
void fill_words(Rng& r, const Levels& lv, uint8_t* out, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        const uint64_t w = lv.word(r);
        std::memcpy(out + i, &w, 8);
    }
}

// Round to nearest for the non-negative values coded here (std::lround is a libm call).
int nearest(float x) {
    return static_cast<int>(x + 0.5f);
}

// The scale of a block or super-block as stored (fp16), for `max_value` coded at `levels` steps.
uint16_t f16_scale(float max_value, int levels) {
    return fp32_to_fp16(max_value / static_cast<float>(levels));
}

// Codes per-sub-block values v[j] > 0 against the fp16 super-block scale d16 (levels 1..max).
void code_sub_scales(const float* v, int n, uint16_t d16, int max, uint8_t* out) {
    const float d = fp16_to_fp32(d16);
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < n; ++j)
        out[j] = static_cast<uint8_t>(std::clamp(nearest(v[j] * inv), 1, max));
}

// Q4_K / Q5_K: eight 6-bit scales and mins into 12 bytes (simd/ref/common.h unpacks them).
void pack_scales_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* packed) {
    for (int j = 0; j < 4; ++j) {
        packed[j] = static_cast<uint8_t>((ls[j] & 63) | ((ls[j + 4] >> 4) << 6));
        packed[j + 4] = static_cast<uint8_t>((lm[j] & 63) | ((lm[j + 4] >> 4) << 6));
        packed[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
    }
}

// An affine super-block (x = d·sc·q − dmin·m) with n_sub sub-blocks: scales sized for `sigma`
// at levels of standard deviation `sd` and mean `mean`, coded in `bits`-bit fields.
struct AffineScales {
    uint16_t d, dmin;
    uint8_t sc[16], m[16];
};
AffineScales affine_scales(Rng& r, float sigma, Moments lm, int n_sub, int max_code) {
    float s[16], mins[16];
    float max_s = 0, max_m = 0;
    r.jitters(s, n_sub);
    const float base = sigma / static_cast<float>(lm.sd);
    for (int j = 0; j < n_sub; ++j) {
        s[j] *= base;
        mins[j] = s[j] * static_cast<float>(lm.mean);
        max_s = std::max(max_s, s[j]);
        max_m = std::max(max_m, mins[j]);
    }
    AffineScales a{};
    a.d = f16_scale(max_s, max_code);
    a.dmin = f16_scale(max_m, max_code);
    code_sub_scales(s, n_sub, a.d, max_code, a.sc);
    code_sub_scales(mins, n_sub, a.dmin, max_code, a.m);
    return a;
}

void q4_K(Rng& r, float sigma, block_q4_K& b) {
    static const Levels lv{0x7777777777777777ull, 0x1111111111111111ull, false};
    static const Moments mo = moments(7, false);
    const AffineScales a = affine_scales(r, sigma, mo, 8, 63);
    b.d = a.d;
    b.dmin = a.dmin;
    pack_scales_k4(a.sc, a.m, b.scales);
    // Each element's level is one nibble, so every nibble is a level of the same law.
    fill_words(r, lv, b.qs, sizeof b.qs);
}

void q5_K(Rng& r, float sigma, block_q5_K& b) {
    static const Levels lv{0x0F0F0F0F0F0F0F0Full, k01, false};
    static const Moments mo = moments(15, false);
    const AffineScales a = affine_scales(r, sigma, mo, 8, 63);
    b.d = a.d;
    b.dmin = a.dmin;
    pack_scales_k4(a.sc, a.m, b.scales);
    uint8_t L[QK_K];
    fill_words(r, lv, L, sizeof L);
    // Element 64c + 32s + l: nibble s of qs[32c + l], bit 2c + s of qh[l].
    for (int l = 0; l < 32; ++l) {
        unsigned h = 0;
        for (int c = 0; c < 4; ++c) {
            const unsigned lo = L[64 * c + l], hi = L[64 * c + 32 + l];
            b.qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
            h |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
        }
        b.qh[l] = static_cast<uint8_t>(h);
    }
}

void q2_K(Rng& r, float sigma, block_q2_K& b) {
    static const Levels lv{0x5555555555555555ull, 0x5555555555555555ull, false};
    static const Moments mo = moments(1, false);
    const AffineScales a = affine_scales(r, sigma, mo, 16, 15);
    b.d = a.d;
    b.dmin = a.dmin;
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(a.sc[j] | (a.m[j] << 4));
    fill_words(r, lv, b.qs, sizeof b.qs);
}

void q6_K(Rng& r, float sigma, block_q6_K& b) {
    // Levels 1..63, centred on 32 (x = d·sc·(L − 32)).
    static const Levels lv{0x1F1F1F1F1F1F1F1Full, k01, true};
    static const Moments mo = moments(31, true);
    float s[16], max_s = 0;
    r.jitters(s, 16);
    for (float& v : s) {
        v *= sigma / static_cast<float>(mo.sd);
        max_s = std::max(max_s, v);
    }
    b.d = f16_scale(max_s, 127);
    uint8_t sc[16];
    code_sub_scales(s, 16, b.d, 127, sc);
    std::memcpy(b.scales, sc, sizeof sc);
    uint8_t L[QK_K];
    fill_words(r, lv, L, sizeof L);
    // Element 128h + 32p + l: low nibble in ql[64h + l + 32(p & 1)] (planes 2, 3 in the high
    // nibble), top two bits at 2p in qh[32h + l].
    for (int h = 0; h < 2; ++h) {
        const uint8_t* P = L + 128 * h;
        for (int l = 0; l < 32; ++l) {
            const unsigned p0 = P[l], p1 = P[32 + l], p2 = P[64 + l], p3 = P[96 + l];
            b.ql[64 * h + l] = static_cast<uint8_t>((p0 & 0xF) | ((p2 & 0xF) << 4));
            b.ql[64 * h + 32 + l] = static_cast<uint8_t>((p1 & 0xF) | ((p3 & 0xF) << 4));
            b.qh[32 * h + l] = static_cast<uint8_t>((p0 >> 4) | ((p1 >> 4) << 2) |
                                                    ((p2 >> 4) << 4) | ((p3 >> 4) << 6));
        }
    }
}

// The legacy 32-element blocks: one fp16 scale (and min) per block.
void q8_0(Rng& r, float sigma, block_q8_0& b) {
    static const Levels lv{0x7F7F7F7F7F7F7F7Full, 0, true};  // 0..254, centred on 127
    static const Moments mo = moments(127, true);
    b.d = fp32_to_fp16(sigma / static_cast<float>(mo.sd) * r.jitter());
    uint8_t L[QK8_0];
    fill_words(r, lv, L, sizeof L);
    for (int i = 0; i < QK8_0; ++i) b.qs[i] = static_cast<int8_t>(static_cast<int>(L[i]) - 127);
}

void q4_0(Rng& r, float sigma, block_q4_0& b) {
    static const Levels lv{0x7777777777777777ull, 0x1111111111111111ull, true};  // 1..15
    static const Moments mo = moments(7, true);
    b.d = fp32_to_fp16(sigma / static_cast<float>(mo.sd) * r.jitter());
    fill_words(r, lv, b.qs, sizeof b.qs);
}

void q4_1(Rng& r, float sigma, block_q4_1& b) {
    static const Levels lv{0x7777777777777777ull, 0x1111111111111111ull, false};
    static const Moments mo = moments(7, false);
    const float d = sigma / static_cast<float>(mo.sd) * r.jitter();
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(-d * static_cast<float>(mo.mean));
    fill_words(r, lv, b.qs, sizeof b.qs);
}

// Q5_0 / Q5_1: levels 0..31 split into nibbles and a bit mask (element j and j + 16 share qs[j]).
void pack_q5(const uint8_t* L, uint8_t* qs, uint8_t* qh) {
    uint32_t h = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = static_cast<uint8_t>((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
        h |= static_cast<uint32_t>(L[j] >> 4) << j;
        h |= static_cast<uint32_t>(L[j + 16] >> 4) << (j + 16);
    }
    std::memcpy(qh, &h, 4);
}

void q5_0(Rng& r, float sigma, block_q5_0& b) {
    static const Levels lv{0x0F0F0F0F0F0F0F0Full, k01, true};  // 1..31, centred on 16
    static const Moments mo = moments(15, true);
    b.d = fp32_to_fp16(sigma / static_cast<float>(mo.sd) * r.jitter());
    uint8_t L[QK5_0];
    fill_words(r, lv, L, sizeof L);
    pack_q5(L, b.qs, b.qh);
}

void q5_1(Rng& r, float sigma, block_q5_1& b) {
    static const Levels lv{0x0F0F0F0F0F0F0F0Full, k01, false};
    static const Moments mo = moments(15, false);
    const float d = sigma / static_cast<float>(mo.sd) * r.jitter();
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(-d * static_cast<float>(mo.mean));
    uint8_t L[QK5_1];
    fill_words(r, lv, L, sizeof L);
    pack_q5(L, b.qs, b.qh);
}

template <typename Block, void (*Make)(Rng&, float, Block&)>
void blocks(Rng& r, float sigma, uint8_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        Block b;
        Make(r, sigma, b);
        std::memcpy(dst + static_cast<size_t>(i) * sizeof(Block), &b, sizeof(Block));
    }
}

}  // namespace

bool has_random_blocks(quant::Type type) {
    using quant::Type;
    switch (type) {
        case Type::Q4_0:
        case Type::Q4_1:
        case Type::Q5_0:
        case Type::Q5_1:
        case Type::Q8_0:
        case Type::Q2_K:
        case Type::Q4_K:
        case Type::Q5_K:
        case Type::Q6_K:
            return true;
        default:
            return false;
    }
}

void random_blocks(quant::Type type, uint64_t seed, float sigma, uint8_t* dst, int64_t n_blocks) {
    Rng r(seed);
    using quant::Type;
    switch (type) {
        case Type::Q4_0:
            return blocks<block_q4_0, q4_0>(r, sigma, dst, n_blocks);
        case Type::Q4_1:
            return blocks<block_q4_1, q4_1>(r, sigma, dst, n_blocks);
        case Type::Q5_0:
            return blocks<block_q5_0, q5_0>(r, sigma, dst, n_blocks);
        case Type::Q5_1:
            return blocks<block_q5_1, q5_1>(r, sigma, dst, n_blocks);
        case Type::Q8_0:
            return blocks<block_q8_0, q8_0>(r, sigma, dst, n_blocks);
        case Type::Q2_K:
            return blocks<block_q2_K, q2_K>(r, sigma, dst, n_blocks);
        case Type::Q4_K:
            return blocks<block_q4_K, q4_K>(r, sigma, dst, n_blocks);
        case Type::Q5_K:
            return blocks<block_q5_K, q5_K>(r, sigma, dst, n_blocks);
        case Type::Q6_K:
            return blocks<block_q6_K, q6_K>(r, sigma, dst, n_blocks);
        default:
            fail("no random block writer for type {}", quant::type_name(type));
    }
}

}  // namespace strata::synth
