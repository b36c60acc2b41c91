// The float products and row operations that follow llama.cpp's evaluation order.
//
//  - The scalar twins of simd/float_order compute the dot product (within a float-rounding
//    bound of the double-precision value, for every length and both orders).
//  - The AVX-512 kernels equal their scalar twins bit for bit: the twin spells out the order
//    (lanes, fused multiply-adds, reduction tree) the kernel is meant to have, so any difference
//    is a kernel that sums in another order. Skipped with a message on CPUs without AVX-512.
//  - matmul picks the reference's path: tinyBLAS for batches of suitable shape, vec_dot
//    otherwise, for experts, and for strided F32 activations.
//  - The masked softmax of an attention row equals the plain softmax of the row padded with -inf.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/arch/attention.h"
#include "runtime/ops.h"
#include "simd/avx512/kernels.h"
#include "simd/avx512bf16/kernels.h"
#include "simd/dispatch.h"
#include "simd/float_order.h"
#include "simd/fp16.h"
#include "simd/matmul.h"

namespace strata {
namespace {

using quant::Type;

constexpr double kUnit = 1.0 / (1 << 24);  // float unit roundoff

// Lengths that exercise whole steps of 16, 32 and 64, partial last steps and short rows.
const int64_t kLengths[] = {1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 96, 127, 128, 200, 256, 1000};

struct Rows {
    std::vector<float> x, y;       // the values (for F16 / BF16: exactly the rounded halves)
    std::vector<uint16_t> hx, hy;  // F16 / BF16 bits
    double exact = 0.0;            // Σ x·y in double
    double abs_sum = 0.0;          // Σ |x·y|
};

Rows make_rows(Type type, int64_t n, std::mt19937& rng) {
    std::normal_distribution<float> nd;
    Rows r;
    for (int64_t i = 0; i < n; ++i) {
        float a = nd(rng), b = nd(rng) * 0.05f;
        if (type == Type::F16) {
            r.hx.push_back(fp32_to_fp16(a));
            r.hy.push_back(fp32_to_fp16(b));
            a = fp16_to_fp32(r.hx.back());
            b = fp16_to_fp32(r.hy.back());
        } else if (type == Type::BF16) {
            r.hx.push_back(fp32_to_bf16(a));
            r.hy.push_back(fp32_to_bf16(b));
            a = bf16_to_fp32(r.hx.back());
            b = bf16_to_fp32(r.hy.back());
        }
        r.x.push_back(a);
        r.y.push_back(b);
        r.exact += static_cast<double>(a) * b;
        r.abs_sum += std::fabs(static_cast<double>(a) * b);
    }
    return r;
}

// Any order of n float additions of exact products is within n·u·Σ|x·y| of the exact sum.
double bound(const Rows& r) {
    return 1.01 * static_cast<double>(r.x.size() + 2) * kUnit * r.abs_sum + 1e-30;
}

TEST(FloatOrder, ScalarTwinsComputeTheDotProduct) {
    std::mt19937 rng(21);
    for (int64_t n : kLengths) {
        SCOPED_TRACE("n = " + std::to_string(n));
        const Rows f = make_rows(Type::F32, n, rng);
        EXPECT_NEAR(simd::dot_f32_vec(f.x.data(), f.y.data(), n), f.exact, bound(f));
        const Rows h = make_rows(Type::F16, n, rng);
        EXPECT_NEAR(simd::dot_f16_vec(h.hx.data(), h.hy.data(), n), h.exact, bound(h));
        const Rows b = make_rows(Type::BF16, n, rng);
        EXPECT_NEAR(simd::dot_bf16_vec(b.hx.data(), b.hy.data(), n), b.exact, bound(b));
        // The GEMM orders exist for whole vector steps only.
        if (n % 16 == 0) {
            EXPECT_NEAR(simd::dot_f32_gemm(f.x.data(), f.y.data(), n), f.exact, bound(f));
            EXPECT_NEAR(simd::dot_f16_gemm(h.hx.data(), h.hy.data(), n), h.exact, bound(h));
        }
        if (n % 32 == 0) {
            EXPECT_NEAR(simd::dot_bf16_gemm(b.hx.data(), b.hy.data(), n), b.exact, bound(b));
        }
    }
}

TEST(FloatOrder, VecPrefixIsTheFullProductWithZeros) {
    // Masked attention positions: the first n of n_total terms with the rest zero.
    std::mt19937 rng(22);
    for (int64_t n : {1, 40, 63, 64, 100}) {
        for (int64_t n_total : {n, n + 1, (n + 63) / 64 * 64, int64_t{256}}) {
            if (n_total < n) continue;
            Rows r = make_rows(Type::F32, n_total, rng);
            std::vector<float> y0 = r.y;
            for (int64_t i = n; i < n_total; ++i) y0[static_cast<size_t>(i)] = 0.0f;
            EXPECT_EQ(simd::dot_f32_vec_prefix(r.x.data(), r.y.data(), n, n_total),
                      simd::dot_f32_vec(r.x.data(), y0.data(), n_total))
                << n << " of " << n_total;
        }
    }
}

TEST(FloatOrder, VecRemainderFusesOnlyTheLastFewProducts) {
    // The reference's compiled remainder loop: groups of 16, then one of 8, then fused.
    EXPECT_EQ(simd::fused_tail_start(0, 7), 0);
    EXPECT_EQ(simd::fused_tail_start(0, 8), 8);
    EXPECT_EQ(simd::fused_tail_start(0, 15), 8);
    EXPECT_EQ(simd::fused_tail_start(0, 40), 40);
    EXPECT_EQ(simd::fused_tail_start(256, 300), 296);  // 44 left: 16 + 16 + 8, 4 fused
    EXPECT_EQ(simd::fused_tail_start(64, 65), 64);
    // A single leftover product is fused: the result is fma(x, y, lanes), not lanes + round(x·y).
    std::vector<float> x(65, 0.0f), y(65, 0.0f);
    x[0] = -1.0f;
    y[0] = 1.0f;
    x[64] = 1.0f + 0x1p-12f;  // x·y = 1 + 2^-11 + 2^-24: rounding it first drops the 2^-24
    y[64] = 1.0f + 0x1p-12f;
    const float fused = std::fma(x[64], y[64], -1.0f);
    ASSERT_NE(fused, -1.0f + x[64] * y[64]);
    EXPECT_EQ(simd::dot_f32_vec(x.data(), y.data(), 65), fused);
}

bool cpu_has_avx512() {
    return dispatch::features().avx512_set();
}

TEST(FloatOrder, Avx512KernelsEqualTheirScalarTwins) {
    if (!cpu_has_avx512())
        GTEST_SKIP() << "this CPU (or its OS) lacks AVX-512 (F/BW/VL/DQ/VNNI): the AVX-512 "
                        "float kernels cannot run here and are not checked";
    std::mt19937 rng(23);
    for (int trial = 0; trial < 4; ++trial) {
        for (int64_t n : kLengths) {
            SCOPED_TRACE("n = " + std::to_string(n));
            const Rows f = make_rows(Type::F32, n, rng);
            EXPECT_EQ(quant::avx512::vec_dot_f32(n, f.x.data(), f.y.data()),
                      simd::dot_f32_vec(f.x.data(), f.y.data(), n));
            const Rows h = make_rows(Type::F16, n, rng);
            EXPECT_EQ(quant::avx512::vec_dot_f16(n, h.hx.data(), h.hy.data()),
                      simd::dot_f16_vec(h.hx.data(), h.hy.data(), n));
            if (n % 16 == 0) {
                EXPECT_EQ(quant::avx512::gemm_dot_f32(n, f.x.data(), f.y.data()),
                          simd::dot_f32_gemm(f.x.data(), f.y.data(), n));
                EXPECT_EQ(quant::avx512::gemm_dot_f16(n, h.hx.data(), h.hy.data()),
                          simd::dot_f16_gemm(h.hx.data(), h.hy.data(), n));
            }
        }
    }
}

TEST(FloatOrder, Avx512Bf16KernelsEqualTheirScalarTwins) {
    if (!dispatch::features().avx512bf16_set())
        GTEST_SKIP() << "this CPU (or its OS) lacks AVX512_BF16: the BF16 products of the "
                        "avx512 level cannot run here and are not checked";
    std::mt19937 rng(29);
    for (int trial = 0; trial < 4; ++trial) {
        for (int64_t n : kLengths) {
            SCOPED_TRACE("n = " + std::to_string(n));
            const Rows b = make_rows(Type::BF16, n, rng);
            EXPECT_EQ(quant::avx512bf16::vec_dot_bf16(n, b.hx.data(), b.hy.data()),
                      simd::dot_bf16_vec(b.hx.data(), b.hy.data(), n));
            if (n % 32 == 0) {
                EXPECT_EQ(quant::avx512bf16::gemm_dot_bf16(n, b.hx.data(), b.hy.data()),
                          simd::dot_bf16_gemm(b.hx.data(), b.hy.data(), n));
            }
        }
    }
}

TEST(FloatOrder, Avx512KernelsAreRegisteredForTheFloatTypes) {
    if (!cpu_has_avx512())
        GTEST_SKIP() << "this CPU (or its OS) lacks AVX-512: nothing is registered to check";
    const dispatch::KernelTable table =
        dispatch::build_table(dispatch::features(), dispatch::Isa::avx512);
    for (Type t : {Type::F32, Type::F16, Type::BF16}) {
        // BF16 runs its scalar reference on AVX-512 CPUs without AVX512_BF16.
        const dispatch::Isa want = t != Type::BF16 || dispatch::features().avx512bf16_set()
                                       ? dispatch::Isa::avx512
                                       : dispatch::Isa::scalar;
        EXPECT_EQ(table[t].vec_dot_isa, want) << quant::type_name(t);
        EXPECT_EQ(table[t].gemm_dot_isa, want) << quant::type_name(t);
    }
    // A quantized type's GEMM product is its vec_dot.
    EXPECT_EQ(table[Type::Q4_K].gemm_dot, table[Type::Q4_K].vec_dot);
}

TEST(FloatOrder, ScalarReferencesSumInTheReferenceOrders) {
    // Without ISA kernels the float types still sum as llama.cpp's AVX-512 build does: the
    // scalar table's products equal the AVX-512 kernels (ggml's and tinyBLAS's code order) bit
    // for bit. (The scalar twins in simd/float_order are what the table holds, so comparing
    // with them would check nothing.)
    if (!cpu_has_avx512())
        GTEST_SKIP() << "this CPU (or its OS) lacks AVX-512: the reference order cannot be run "
                        "here to compare the scalar table with";
    const dispatch::KernelTable table = dispatch::build_table(dispatch::CpuFeatures{});
    std::mt19937 rng(26);
    for (int64_t n : {64, 96, 300}) {
        const Rows f = make_rows(Type::F32, n, rng);
        EXPECT_EQ(table[Type::F32].vec_dot(n, f.x.data(), f.y.data()),
                  quant::avx512::vec_dot_f32(n, f.x.data(), f.y.data()));
        const Rows h = make_rows(Type::F16, n, rng);
        EXPECT_EQ(table[Type::F16].vec_dot(n, h.hx.data(), h.hy.data()),
                  quant::avx512::vec_dot_f16(n, h.hx.data(), h.hy.data()));
        const Rows b = make_rows(Type::BF16, n, rng);
        const bool bf16 = dispatch::features().avx512bf16_set();
        if (bf16) {
            EXPECT_EQ(table[Type::BF16].vec_dot(n, b.hx.data(), b.hy.data()),
                      quant::avx512bf16::vec_dot_bf16(n, b.hx.data(), b.hy.data()));
        }
        if (n % 32 != 0) continue;
        EXPECT_EQ(table[Type::F32].gemm_dot(n, f.x.data(), f.y.data()),
                  quant::avx512::gemm_dot_f32(n, f.x.data(), f.y.data()));
        EXPECT_EQ(table[Type::F16].gemm_dot(n, h.hx.data(), h.hy.data()),
                  quant::avx512::gemm_dot_f16(n, h.hx.data(), h.hy.data()));
        if (bf16) {
            EXPECT_EQ(table[Type::BF16].gemm_dot(n, b.hx.data(), b.hy.data()),
                      quant::avx512bf16::gemm_dot_bf16(n, b.hx.data(), b.hy.data()));
        }
    }
    EXPECT_EQ(table[Type::F32].gemm_dot_isa, dispatch::Isa::scalar);
}

TEST(FloatOrder, GemmOrderOnlyWhereTinyBlasRuns) {
    // Batches of at least two rows, n_out a multiple of 4, n_in a multiple of the vector step.
    EXPECT_TRUE(simd::takes_gemm_order(Type::F32, 64, 8, 2));
    EXPECT_FALSE(simd::takes_gemm_order(Type::F32, 64, 8, 1));
    EXPECT_FALSE(simd::takes_gemm_order(Type::F32, 64, 6, 2));
    EXPECT_FALSE(simd::takes_gemm_order(Type::F32, 72, 8, 2));
    EXPECT_TRUE(simd::takes_gemm_order(Type::F16, 48, 4, 3));
    EXPECT_TRUE(simd::takes_gemm_order(Type::BF16, 64, 4, 3));
    EXPECT_FALSE(simd::takes_gemm_order(Type::BF16, 48, 4, 3));
    EXPECT_FALSE(simd::takes_gemm_order(Type::Q8_0, 64, 8, 2));
    // Experts never; strided activations only where they are converted (not F32).
    EXPECT_FALSE(simd::takes_gemm_order(Type::F16, 64, 8, 2, simd::Path::Experts));
    EXPECT_FALSE(simd::takes_gemm_order(Type::F32, 64, 8, 2, simd::Path::Strided));
    EXPECT_TRUE(simd::takes_gemm_order(Type::F16, 64, 8, 2, simd::Path::Strided));
    EXPECT_TRUE(simd::takes_gemm_order(Type::BF16, 64, 8, 2, simd::Path::Strided));
}

TEST(FloatOrder, MatmulFollowsThePath) {
    std::mt19937 rng(24);
    const int64_t n_in = 64, n_out = 8, n_rows = 3;
    const Rows w = make_rows(Type::F32, n_in * n_out, rng);
    const Rows x = make_rows(Type::F32, n_in * n_rows, rng);
    const simd::Matrix m{reinterpret_cast<const uint8_t*>(w.x.data()), Type::F32, n_in, n_out,
                         n_in * sizeof(float)};
    const dispatch::TypeKernels& k = dispatch::kernels()[Type::F32];
    simd::Activations act;
    std::vector<float> gemm(static_cast<size_t>(n_out * n_rows)), vec(gemm.size());
    simd::matmul(m, x.x.data(), n_in, n_rows, gemm.data(), n_out, act);
    simd::matmul(m, x.x.data(), n_in, n_rows, vec.data(), n_out, act, simd::Path::Experts);
    for (int64_t t = 0; t < n_rows; ++t) {
        for (int64_t r = 0; r < n_out; ++r) {
            const float* wr = w.x.data() + r * n_in;
            const float* xt = x.x.data() + t * n_in;
            EXPECT_EQ(gemm[static_cast<size_t>(t * n_out + r)], k.gemm_dot(n_in, wr, xt));
            EXPECT_EQ(vec[static_cast<size_t>(t * n_out + r)], k.vec_dot(n_in, wr, xt));
        }
    }
    // One row: vec_dot whatever the path.
    simd::matmul(m, x.x.data(), n_in, 1, gemm.data(), n_out, act);
    for (int64_t r = 0; r < n_out; ++r)
        EXPECT_EQ(gemm[static_cast<size_t>(r)], k.vec_dot(n_in, w.x.data() + r * n_in, x.x.data()));
}

TEST(FloatOrder, MaskedSoftmaxIsTheSoftmaxOfThePaddedRow) {
    std::mt19937 rng(25);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    for (int64_t n : {1, 5, 16, 17, 40, 255, 256, 300}) {
        for (int64_t n_total : {n, arch::kv_view_length(n)}) {
            std::vector<float> row(static_cast<size_t>(n));
            for (float& v : row) v = nd(rng);
            std::vector<float> padded(static_cast<size_t>(n_total), -INFINITY);
            std::copy(row.begin(), row.end(), padded.begin());
            ops::softmax(padded.data(), n_total);
            ops::softmax_masked(row.data(), n, n_total);
            double sum = 0.0;
            for (int64_t i = 0; i < n; ++i) {
                EXPECT_EQ(row[static_cast<size_t>(i)], padded[static_cast<size_t>(i)])
                    << n << " of " << n_total << " entry " << i;
                sum += row[static_cast<size_t>(i)];
            }
            for (int64_t i = n; i < n_total; ++i) EXPECT_EQ(padded[static_cast<size_t>(i)], 0.0f);
            EXPECT_NEAR(sum, 1.0, 1e-5);
        }
    }
}

TEST(FloatOrder, KvViewGrowsInStepsOf256) {
    EXPECT_EQ(arch::kv_view_length(1), 256);
    EXPECT_EQ(arch::kv_view_length(256), 256);
    EXPECT_EQ(arch::kv_view_length(257), 512);
    EXPECT_EQ(arch::kv_view_length(4000), 4096);
}

// Attention's batched weighted sums: sixteen products in one pass give each product's own bits
// (the scalar twin, and the AVX-512 kernel where the CPU has it), with probabilities that end in
// zeros (masked positions) as attention passes them.
TEST(FloatOrder, Gemm4x4EqualsSixteenProducts) {
    const bool avx512 = cpu_has_avx512();
    std::mt19937 rng(31);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t n : {1, 5, 15, 16, 17, 31, 64, 100, 257, 600}) {
        SCOPED_TRACE("n = " + std::to_string(n));
        std::vector<float> xs(static_cast<size_t>(4 * n)), ys(static_cast<size_t>(4 * n));
        for (float& v : xs) v = normal(rng);
        for (float& v : ys) v = std::abs(normal(rng));
        for (int64_t c = 1; c < 4; ++c) {  // query c sees n - c positions, then zeros
            for (int64_t j = std::max<int64_t>(0, n - c); j < n; ++j)
                ys[static_cast<size_t>(c * n + j)] = 0.0f;
        }
        const float* x[4];
        const float* y[4];
        for (int64_t r = 0; r < 4; ++r) {
            x[r] = xs.data() + r * n;
            y[r] = ys.data() + r * n;
        }
        float out[16], fast[16];
        simd::dot_f32_gemm_4x4(x, y, n, out);
        if (avx512) quant::avx512::dot_f32_gemm_4x4(x, y, n, fast);
        for (int r = 0; r < 4; ++r) {
            for (int c = 0; c < 4; ++c) {
                const int64_t valid = std::max<int64_t>(0, n - c);
                const float want = simd::dot_f32_gemm(x[r], y[c], valid);
                EXPECT_EQ(out[r * 4 + c], want) << "row " << r << ", query " << c;
                if (avx512) {
                    EXPECT_EQ(fast[r * 4 + c], want) << "AVX-512, row " << r << ", query " << c;
                }
            }
        }
    }
    if (!avx512)
        GTEST_SKIP()
            << "the scalar twin was checked; this CPU lacks AVX-512, so its kernel was not";
}

// The vector exp builds 2^n from bits (so that it vectorises); it must give what scaling by
// ldexp gives (_mm512_scalef_ps: one rounding), subnormal and overflowing results included.
TEST(FloatOrder, ExpVecScalesAsLdexp) {
    const auto reference = [](float x) {
        const float shift = 0x1.8p23f;
        const float z = std::fma(x, 0x1.715476p+0f, shift);
        const float n = z - shift;
        const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
        const float u = b * b;
        const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                          std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                                 u, std::fma(0x1.ffffecp-1f, b, 1.0f));
        if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
        return std::ldexp(j, static_cast<int>(n));
    };
    std::vector<float> xs = {0.0f,   -0.0f,   -INFINITY, INFINITY, 88.7f,  88.8f,  89.0f,
                             -87.3f, -103.9f, -104.0f,   -133.0f,  133.0f, 1e-30f, -1e-30f};
    std::mt19937 rng(41);
    std::uniform_real_distribution<float> wide(-140.0f, 140.0f);
    for (int i = 0; i < 200000; ++i) xs.push_back(wide(rng));
    for (float x = -110.0f; x < -80.0f; x += 0.001f) xs.push_back(x);
    std::vector<float> ys(xs.size());
    simd::exp_vec_n(xs.data(), ys.data(), static_cast<int64_t>(xs.size()));
    int bad = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
        const float want = reference(xs[i]);
        const float scalar = simd::exp_vec(xs[i]);
        if (std::memcmp(&want, &scalar, 4) != 0 || std::memcmp(&want, &ys[i], 4) != 0) {
            if (++bad <= 5)
                ADD_FAILURE() << "x = " << xs[i] << ": ldexp " << want << ", exp_vec " << scalar
                              << ", exp_vec_n " << ys[i];
        }
    }
    EXPECT_EQ(bad, 0);
}

// Attention's decoding products: sixteen at a time (any CPU, and AVX-512), and one row against one
// to six vectors (AVX-512), each the bits of dot_f32_vec_prefix, over masked views of every kind.
TEST(FloatOrder, DecodingBlocksEqualOneProductEach) {
    std::mt19937 rng(43);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const bool avx512 = cpu_has_avx512();
    for (int64_t n_total : {40, 64, 256, 576, 600, 4352}) {
        for (int64_t n :
             {1, 15, 16, 17, 40, 63, 64, 65, 100, 255, 256, 300, 576, 600, 2500, 4097}) {
            if (n > n_total) continue;
            SCOPED_TRACE("n = " + std::to_string(n) + " of " + std::to_string(n_total));
            std::vector<float> xs(static_cast<size_t>(4 * n_total)), ys(xs.size() + 2 * n_total);
            for (float& v : xs) v = normal(rng);
            for (float& v : ys) v = normal(rng);
            const float* x[4];
            const float* y[6];
            for (int64_t r = 0; r < 4; ++r) x[r] = xs.data() + r * n_total;
            for (int64_t c = 0; c < 6; ++c) y[c] = ys.data() + c * n_total;
            float out[16];
            simd::dot_f32_vec_prefix_4x4(x, y, n, n_total, out);
            for (int r = 0; r < 4; ++r) {
                for (int c = 0; c < 4; ++c)
                    EXPECT_EQ(out[r * 4 + c], simd::dot_f32_vec_prefix(x[r], y[c], n, n_total))
                        << "row " << r << ", vector " << c;
            }
            if (!avx512) continue;
            quant::avx512::vec_dot_f32_prefix_4x4(x, y, n, n_total, out);
            for (int r = 0; r < 4; ++r) {
                for (int c = 0; c < 4; ++c)
                    EXPECT_EQ(out[r * 4 + c], simd::dot_f32_vec_prefix(x[r], y[c], n, n_total))
                        << "AVX-512 block, row " << r << ", vector " << c;
            }
            for (int n_y = 1; n_y <= 6; ++n_y) {
                float rows[6];
                quant::avx512::vec_dot_f32_prefix_rows(x[1], y, n_y, n, n_total, rows);
                for (int c = 0; c < n_y; ++c)
                    EXPECT_EQ(rows[c], simd::dot_f32_vec_prefix(x[1], y[c], n, n_total))
                        << n_y << " vectors, vector " << c;
            }
        }
    }
    if (!avx512)
        GTEST_SKIP() << "the 4x4 blocks were checked; this CPU lacks AVX-512, so its kernels "
                        "were not";
}

}  // namespace
}  // namespace strata
