// Dot products of weight rows with partner-format activation rows.
//
//  - Exact: with power-of-two scales and small activation levels every product, block sum and
//    running sum is exactly representable, so the kernel must equal the exact dot product of
//    the dequantized rows bit for bit. Weight blocks are random bytes (all level and scale
//    codes occur), only their scale fields are set.
//  - Realistic: quantized random weights and activations against a double-precision dot of the
//    dequantized rows, within the float rounding bound derived at float_bound().
//  - Dispatch: whatever kernel the dispatch table holds for this CPU agrees with the scalar
//    reference within the same bound.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "simd/dispatch.h"
#include "simd/quant.h"

namespace strata {
namespace {

using namespace quant;

constexpr double kUnit = 1.0 / (1 << 24);  // float unit roundoff, 2^-24

const Type kWeightTypes[] = {Type::F32,  Type::F16,  Type::BF16, Type::Q4_0, Type::Q4_1,
                             Type::Q5_0, Type::Q5_1, Type::Q8_0, Type::Q8_1, Type::Q2_K,
                             Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K, Type::Q8_K};

std::vector<float> dequantized(Type type, const std::vector<uint8_t>& q, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(type, q.data(), out.data(), n);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Exact arithmetic.

constexpr uint16_t kF16Sixteenth = 0x2c00;  // 2^-4
constexpr float kActivationScale = 0.125f;  // 2^-3, exact in f16 (0x3000) and float

// Random weight blocks whose scale fields are 2^-4 (and mins, where the field is a float
// minimum, -2^-4): every decoded weight is a small integer times 2^-4 or 2^-8.
std::vector<uint8_t> random_weights(Type type, int64_t n, std::mt19937& rng) {
    const TypeTraits& t = traits(type);
    const int64_t blocks = n / t.block_size;
    std::vector<uint8_t> q(row_bytes(type, n));
    for (auto& byte : q) byte = static_cast<uint8_t>(rng());
    auto set16 = [&](int64_t b, size_t offset, uint16_t v) {
        std::memcpy(q.data() + static_cast<size_t>(b) * t.block_bytes + offset, &v, 2);
    };
    for (int64_t b = 0; b < blocks; ++b) {
        switch (type) {
            case Type::Q4_0:
                set16(b, offsetof(block_q4_0, d), kF16Sixteenth);
                break;
            case Type::Q5_0:
                set16(b, offsetof(block_q5_0, d), kF16Sixteenth);
                break;
            case Type::Q8_0:
                set16(b, offsetof(block_q8_0, d), kF16Sixteenth);
                break;
            case Type::Q4_1:
                set16(b, offsetof(block_q4_1, d), kF16Sixteenth);
                set16(b, offsetof(block_q4_1, m), kF16Sixteenth | 0x8000);
                break;
            case Type::Q5_1:
                set16(b, offsetof(block_q5_1, d), kF16Sixteenth);
                set16(b, offsetof(block_q5_1, m), kF16Sixteenth | 0x8000);
                break;
            case Type::Q8_1:
                set16(b, offsetof(block_q8_1, d), kF16Sixteenth);
                break;
            case Type::Q2_K:
                set16(b, offsetof(block_q2_K, d), kF16Sixteenth);
                set16(b, offsetof(block_q2_K, dmin), kF16Sixteenth);
                break;
            case Type::Q3_K:
                set16(b, offsetof(block_q3_K, d), kF16Sixteenth);
                break;
            case Type::Q4_K:
                set16(b, offsetof(block_q4_K, d), kF16Sixteenth);
                set16(b, offsetof(block_q4_K, dmin), kF16Sixteenth);
                break;
            case Type::Q5_K:
                set16(b, offsetof(block_q5_K, d), kF16Sixteenth);
                set16(b, offsetof(block_q5_K, dmin), kF16Sixteenth);
                break;
            case Type::Q6_K:
                set16(b, offsetof(block_q6_K, d), kF16Sixteenth);
                break;
            case Type::Q8_K: {
                const float d = 1.0f / 16;
                std::memcpy(q.data() + static_cast<size_t>(b) * t.block_bytes, &d, sizeof d);
                break;
            }
            default:
                break;
        }
    }
    return q;
}

// Activation levels in [-3, 3] with scale 2^-3, packed by the partner's definition; `values`
// receives the exact activations.
std::vector<uint8_t> small_activations(Type partner, int64_t n, std::mt19937& rng,
                                       std::vector<double>* values) {
    std::uniform_int_distribution<int> level(-3, 3);
    std::vector<int> L(static_cast<size_t>(n));
    for (int& l : L) l = level(rng);
    values->resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) (*values)[i] = kActivationScale * L[i];
    std::vector<uint8_t> q(row_bytes(partner, n));
    if (partner == Type::Q8_0 || partner == Type::Q8_1) {
        const bool is_q8_1 = partner == Type::Q8_1;
        for (int64_t b = 0; b < n / 32; ++b) {
            uint8_t* blk = q.data() + b * (is_q8_1 ? sizeof(block_q8_1) : sizeof(block_q8_0));
            const uint16_t d = fp32_to_fp16(kActivationScale);
            std::memcpy(blk, &d, 2);
            int sum = 0;
            int8_t* qs = reinterpret_cast<int8_t*>(blk + (is_q8_1 ? 4 : 2));
            for (int j = 0; j < 32; ++j) {
                qs[j] = static_cast<int8_t>(L[b * 32 + j]);
                sum += L[b * 32 + j];
            }
            if (is_q8_1) {
                const uint16_t s = fp32_to_fp16(kActivationScale * static_cast<float>(sum));
                std::memcpy(blk + 2, &s, 2);  // exact: |Σ| ≤ 96
            }
        }
    } else if (partner == Type::Q8_K) {
        auto* blocks = reinterpret_cast<block_q8_K*>(q.data());
        for (int64_t b = 0; b < n / 256; ++b) {
            blocks[b].d = kActivationScale;
            for (int j = 0; j < 256; ++j) blocks[b].qs[j] = static_cast<int8_t>(L[b * 256 + j]);
            for (int g = 0; g < 16; ++g) {
                int sum = 0;
                for (int j = 0; j < 16; ++j) sum += L[b * 256 + g * 16 + j];
                blocks[b].bsums[g] = static_cast<int16_t>(sum);
            }
        }
    } else {
        std::vector<float> f(values->begin(), values->end());
        quantize_row(partner, f.data(), q.data(), n);  // F32 / F16 / BF16: exact for these
    }
    return q;
}

TEST(QuantVecDot, ExactWithPowerOfTwoScales) {
    std::mt19937 rng(3);
    for (Type type : kWeightTypes) {
        if (type == Type::F32 || type == Type::F16 || type == Type::BF16) continue;
        const TypeTraits& t = traits(type);
        // Four blocks: the largest |Σ| in units of 2^-7 stays below 2^24 (Q6_K: 4 · 256 ·
        // 32 · 128 · 3 < 2^24), so float holds every partial sum exactly.
        for (int64_t blocks : {1, 4}) {
            const int64_t n = t.block_size * blocks;
            SCOPED_TRACE(std::string(type_name(type)) + " n = " + std::to_string(n));
            const std::vector<uint8_t> w = random_weights(type, n, rng);
            std::vector<double> a;
            const std::vector<uint8_t> aq = small_activations(t.partner, n, rng, &a);
            const std::vector<float> wf = dequantized(type, w, n);
            double exact = 0.0;
            for (int64_t i = 0; i < n; ++i) exact += static_cast<double>(wf[i]) * a[i];
            ASSERT_EQ(static_cast<double>(static_cast<float>(exact)), exact);
            EXPECT_EQ(t.vec_dot(n, w.data(), aq.data()), static_cast<float>(exact));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Realistic data within float rounding.

// The weight offset of element i (|min| of its sub-block / block), for the formats with one;
// decoded from the block fields here so that the bound does not lean on the kernel.
std::vector<double> offsets(Type type, const std::vector<uint8_t>& q, int64_t n) {
    std::vector<double> off(static_cast<size_t>(n), 0.0);
    const size_t bytes = traits(type).block_bytes;
    for (int64_t i = 0; i < n; ++i) {
        const uint8_t* blk = q.data() + static_cast<size_t>(i / traits(type).block_size) * bytes;
        const int e = static_cast<int>(i % traits(type).block_size);
        if (type == Type::Q4_1 || type == Type::Q5_1) {
            uint16_t m;
            std::memcpy(&m, blk + 2, 2);
            off[i] = std::fabs(fp16_to_fp32(m));
        } else if (type == Type::Q2_K) {
            const auto* b = reinterpret_cast<const block_q2_K*>(blk);
            off[i] = fp16_to_fp32(b->dmin) * (b->scales[e / 16] >> 4);
        } else if (type == Type::Q4_K || type == Type::Q5_K) {
            const uint8_t* sc = blk + 4;  // after d, dmin
            uint16_t dmin;
            std::memcpy(&dmin, blk + 2, 2);
            const int j = e / 32;
            const int m = j < 4 ? (sc[j + 4] & 63) : ((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
            off[i] = fp16_to_fp32(dmin) * m;
        }
    }
    return off;
}

// Float rounding of a kernel that forms per block A = (d_w·d_a)·isum and B = (dmin·d_a)·msum
// (each within 3 units of roundoff), subtracts them (one more) and sums nb blocks in float
// ((nb - 1) more): |error| ≤ (nb + 4)·u·Σ_i |a_i|·(|w_i| + 2·|offset_i|), because the level part
// of a weight is bounded by |w_i| + |offset_i|. Q4_1 / Q5_1 also use s = f16(d_a·Σq_a), off from
// d_a(f16)·Σq_a by up to 2·2^-11 relative, times |m|. Doubled for safety margin.
double float_bound(Type type, const std::vector<float>& w, const std::vector<double>& off,
                   const std::vector<float>& a, const std::vector<uint8_t>& aq) {
    const auto n = static_cast<int64_t>(w.size());
    const int64_t nb = n / traits(type).block_size;
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += std::fabs(a[i]) * (std::fabs(w[i]) + 2 * off[i]);
    double bound = static_cast<double>(nb + 4) * kUnit * s;
    if (type == Type::Q4_1 || type == Type::Q5_1) {
        const auto* blocks = reinterpret_cast<const block_q8_1*>(aq.data());
        for (int64_t b = 0; b < n / 32; ++b) {
            int sum = 0;
            for (int j = 0; j < 32; ++j) sum += blocks[b].qs[j];
            bound += off[b * 32] * std::fabs(fp16_to_fp32(blocks[b].d) * sum) * 2.0 / 2048;
        }
    }
    return 2.0 * bound;
}

struct Case {
    std::vector<uint8_t> w;   // quantized weight row
    std::vector<uint8_t> aq;  // activation row in the partner format
    double exact = 0.0;       // Σ dequantized w · dequantized a, in double
    double bound = 0.0;
};

Case make_case(Type type, int64_t n, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
    for (float& v : wf) v = 0.02f * normal(rng) + 0.005f;  // a mean, so mins matter
    for (float& v : af) v = normal(rng);
    const TypeTraits& t = traits(type);
    Case c;
    c.w.resize(row_bytes(type, n));
    c.aq.resize(row_bytes(t.partner, n));
    quantize_row(type, wf.data(), c.w.data(), n);
    traits(t.partner).quantize_activation(af.data(), c.aq.data(), n);
    const std::vector<float> wd = dequantized(type, c.w, n);
    const std::vector<float> ad = dequantized(t.partner, c.aq, n);
    for (int64_t i = 0; i < n; ++i) c.exact += static_cast<double>(wd[i]) * ad[i];
    c.bound = float_bound(type, wd, offsets(type, c.w, n), ad, c.aq);
    return c;
}

TEST(QuantVecDot, RealisticRowsWithinFloatRounding) {
    std::mt19937 rng(5);
    for (Type type : kWeightTypes) {
        const int64_t unit = std::max<int64_t>(traits(type).block_size, 32);
        for (int64_t blocks : {1, 3, 16, 40}) {
            const int64_t n = unit * blocks;
            SCOPED_TRACE(std::string(type_name(type)) + " n = " + std::to_string(n));
            const Case c = make_case(type, n, rng);
            const float got = traits(type).vec_dot(n, c.w.data(), c.aq.data());
            EXPECT_NEAR(got, c.exact, c.bound);
            EXPECT_GT(c.bound, 0.0);
        }
    }
}

TEST(QuantVecDot, DispatchedKernelsAgreeWithReference) {
    std::printf("[ dispatch ] %s\n", dispatch::to_string(dispatch::features()).c_str());
    std::mt19937 rng(8);
    for (Type type : kWeightTypes) {
        const dispatch::TypeKernels& k = dispatch::kernels()[type];
        ASSERT_NE(k.vec_dot, nullptr) << type_name(type);
        const int64_t unit = std::max<int64_t>(traits(type).block_size, 32);
        for (int64_t blocks : {1, 2, 7, 33}) {  // ragged block counts for unrolled kernels
            const int64_t n = unit * blocks;
            const Case c = make_case(type, n, rng);
            const float ref = traits(type).vec_dot(n, c.w.data(), c.aq.data());
            const float fast = k.vec_dot(n, c.w.data(), c.aq.data());
            // Both are within c.bound of the exact value.
            EXPECT_NEAR(fast, ref, 2 * c.bound)
                << type_name(type) << " (" << dispatch::isa_name(k.vec_dot_isa) << ") n = " << n;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every ISA's kernels, whichever one dispatch would pick: the table capped at an ISA holds that
// ISA's kernels (tagged with it).

bool cpu_runs(dispatch::Isa isa) {
    const dispatch::CpuFeatures& f = dispatch::features();
    switch (isa) {
        case dispatch::Isa::scalar:
            return true;
        case dispatch::Isa::avx2:
            return f.avx2_set();
        case dispatch::Isa::avx512:
            return f.avx512_set();
        case dispatch::Isa::amx:
            return f.amx_set();
    }
    return false;
}

class QuantVecDotIsa : public ::testing::TestWithParam<dispatch::Isa> {};

TEST_P(QuantVecDotIsa, KernelsMatchTheReference) {
    const dispatch::Isa isa = GetParam();
    const std::string name(dispatch::isa_name(isa));
    if (!cpu_runs(isa))
        GTEST_SKIP() << "this CPU (or its OS) does not support " << name
                     << ": its kernels cannot run here and are not checked";
    const dispatch::KernelTable table = dispatch::build_table(dispatch::features(), isa);
    std::mt19937 rng(13);
    int checked = 0;
    for (Type type : kWeightTypes) {
        const dispatch::TypeKernels& k = table[type];
        if (k.vec_dot_isa != isa) continue;
        ++checked;
        const TypeTraits& t = traits(type);
        // Exact rows: the fast kernel sums in another order, which cannot matter when every
        // partial sum is exact (see ExactWithPowerOfTwoScales).
        for (int64_t blocks : {1, 2, 3, 4}) {
            const int64_t n = t.block_size * blocks;
            const std::vector<uint8_t> w = random_weights(type, n, rng);
            std::vector<double> a;
            const std::vector<uint8_t> aq = small_activations(t.partner, n, rng, &a);
            EXPECT_EQ(k.vec_dot(n, w.data(), aq.data()), t.vec_dot(n, w.data(), aq.data()))
                << name << " " << type_name(type) << " exact row, n = " << n;
        }
        // Realistic rows of ragged block counts.
        const int64_t unit = std::max<int64_t>(t.block_size, 32);
        for (int64_t blocks : {1, 2, 5, 7, 33}) {
            const int64_t n = unit * blocks;
            const Case c = make_case(type, n, rng);
            const float got = k.vec_dot(n, c.w.data(), c.aq.data());
            EXPECT_NEAR(got, c.exact, c.bound) << name << " " << type_name(type) << " n = " << n;
            // Quantized weights: every level sums in llama.cpp's AVX2 order, the references too
            // (simd/ref/legacy_dot.cpp, kquants_dot.cpp), so the bits are the same.
            if (t.partner != Type::F32 && t.partner != Type::F16 && t.partner != Type::BF16) {
                EXPECT_EQ(got, t.vec_dot(n, c.w.data(), c.aq.data()))
                    << name << " " << type_name(type) << " realistic row, n = " << n;
            }
        }
    }
    std::printf("[ isa      ] %s: %d vec_dot kernels checked against the references\n",
                name.c_str(), checked);
    if (checked == 0) {
        // A level that registers no vec_dot (amx today) must leave the level below untouched:
        // the same kernel for every type, so that it runs exactly what was checked there.
        const auto below = static_cast<dispatch::Isa>(static_cast<int>(isa) - 1);
        const dispatch::KernelTable lower = dispatch::build_table(dispatch::features(), below);
        for (Type type : kWeightTypes) {
            EXPECT_EQ(table[type].vec_dot, lower[type].vec_dot) << name << " " << type_name(type);
            EXPECT_EQ(table[type].vec_dot_isa, lower[type].vec_dot_isa) << type_name(type);
        }
        std::printf("[ isa      ] %s registers no vec_dot: its table equals %s's\n", name.c_str(),
                    std::string(dispatch::isa_name(below)).c_str());
    }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, QuantVecDotIsa,
                         ::testing::Values(dispatch::Isa::avx2, dispatch::Isa::avx512,
                                           dispatch::Isa::amx),
                         [](const ::testing::TestParamInfo<dispatch::Isa>& param) {
                             return std::string(dispatch::isa_name(param.param));
                         });

}  // namespace
}  // namespace strata
