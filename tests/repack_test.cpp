// Interleaved weights (simd/repack.h), Q4_K, Q6_K, Q8_0, Q5_0 and Q4_0: the layouts round-trip; the
// scalar twins agree with the reference product of the plain rows and equal llama.cpp's AVX2 order
// (the avx2 kernels) bit for bit; the AVX-512 tiles equal the twins, and the row tiles over the
// same rows plain, bit for bit on every shape; matmul over an interleaved matrix computes the same
// as the twin.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "simd/dispatch.h"
#include "simd/matmul.h"
#include "simd/parallel.h"
#include "simd/quant.h"
#include "simd/repack.h"

namespace strata {
namespace {

using quant::Type;

constexpr float kSentinel = -12345.5f;

// The types with an interleaved layout, and their scalar twins.
struct Interleaved {
    Type type;
    dispatch::TileFn twin;
};
constexpr Interleaved kTypes[] = {{Type::Q4_K, simd::tile_q4_K_x16_ref},
                                  {Type::Q6_K, simd::tile_q6_K_x16_ref},
                                  {Type::Q8_0, simd::tile_q8_0_x16_ref},
                                  {Type::Q5_0, simd::tile_q5_0_x16_ref},
                                  {Type::Q4_0, simd::tile_q4_0_x16_ref}};

int64_t block_of(Type type) {
    return quant::traits(type).block_size;
}

// The activation format the type's products take (Q8_K, Q8_0).
Type partner_of(Type type) {
    return quant::traits(type).partner;
}

// n_rows rows of n_in quantized N(0, σ) weights, each row its own σ (scales differ by row).
std::vector<uint8_t> quant_rows(Type type, int64_t n_in, int64_t n_rows, uint32_t seed) {
    const size_t rb = quant::row_bytes(type, n_in);
    std::vector<uint8_t> out(rb * static_cast<size_t>(n_rows));
    std::mt19937 rng(seed);
    std::vector<float> f(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_rows; ++r) {
        std::normal_distribution<float> normal(0.01f * static_cast<float>(r % 5),
                                               0.02f + 0.01f * (r % 7));
        for (float& v : f) v = normal(rng);
        quant::quantize_row(type, f.data(), out.data() + rb * static_cast<size_t>(r), n_in);
    }
    return out;
}

// n_rows activation rows of N(0, 1) quantized as llama.cpp quantizes activations to `partner`.
std::vector<uint8_t> act_rows(Type partner, int64_t n_in, int64_t n_rows, uint32_t seed) {
    const size_t rb = quant::row_bytes(partner, n_in);
    std::vector<uint8_t> out(rb * static_cast<size_t>(n_rows));
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> f(static_cast<size_t>(n_in));
    for (int64_t t = 0; t < n_rows; ++t) {
        for (float& v : f) v = normal(rng);
        quant::traits(partner).quantize_activation(f.data(),
                                                   out.data() + rb * static_cast<size_t>(t), n_in);
    }
    return out;
}

TEST(Repack, InterleavingRoundTrips) {
    for (const Interleaved& it : kTypes) {
        for (int64_t nb : {1, 2, 5}) {
            const int64_t n_in = nb * block_of(it.type), n_rows = 48;
            std::vector<uint8_t> rows(quant::row_bytes(it.type, n_in) * n_rows);
            std::mt19937 rng(static_cast<uint32_t>(nb));
            for (uint8_t& b : rows) b = static_cast<uint8_t>(rng());
            std::vector<uint8_t> data = rows;
            simd::interleave_rows(it.type, data.data(), n_in, n_rows);
            EXPECT_NE(data, rows) << "interleaving left the bytes as they were";
            std::vector<uint8_t> copy(rows.size());
            simd::interleave_rows(it.type, rows.data(), copy.data(), n_in, n_rows);
            EXPECT_EQ(copy, data) << "the copying and in-place regroupings differ";
            simd::deinterleave_rows(it.type, data.data(), n_in, n_rows);
            EXPECT_EQ(data, rows) << quant::traits(it.type).name << ", " << nb << " blocks per row";
        }
    }
}

// The ISA regrouping (gathers) writes the scalar one's bytes, on random bytes of every block
// count, rows at any alignment; and row r's block i lands where repack.h says (a spot check
// written from the layout's description, not from either implementation).
TEST(Repack, IsaRegroupingEqualsTheScalarOne) {
    bool any = false;
    for (const Interleaved& it : kTypes) {
        const dispatch::InterleaveFn fast = dispatch::kernels()[it.type].interleave_x16;
        if (fast == nullptr) continue;
        any = true;
        const size_t block = quant::traits(it.type).block_bytes;
        for (int64_t nb : {1, 2, 3, 7, 28}) {
            const size_t bytes = block * static_cast<size_t>(nb) * simd::kInterleaveRows;
            std::vector<uint8_t> buf(bytes + 1);
            std::mt19937 rng(static_cast<uint32_t>(nb) * 31u);
            for (uint8_t& b : buf) b = static_cast<uint8_t>(rng());
            const uint8_t* rows = buf.data() + 1;  // odd address
            std::vector<uint8_t> want(bytes), got(bytes, 0xAA);
            simd::interleave_group_ref(it.type, rows, want.data(), nb);
            ASSERT_TRUE(fast(rows, got.data(), nb));
            EXPECT_EQ(got, want) << quant::traits(it.type).name << ", " << nb << " blocks";
            // Row 5, last block, its last level byte (Q4_K qs[127] / Q6_K ql[127]).
            const int r = 5;
            const size_t src = (static_cast<size_t>(r) * nb + nb - 1) * block +
                               (it.type == Type::Q4_K ? 16 + 127 : 127);
            const size_t dst = static_cast<size_t>(nb - 1) * block * simd::kInterleaveRows +
                               (it.type == Type::Q4_K ? 256 : 288) + 64 * 31 + 4 * r + 3;
            EXPECT_EQ(got[dst], rows[src]);
        }
    }
    if (!any) GTEST_SKIP() << "no ISA regrouping on this CPU (AVX-512 VNNI)";
}

TEST(Repack, TwinAgreesWithTheReferenceProductOfThePlainRows) {
    // llama.cpp's AVX2 kernels, where this CPU has them: the twins' float order is theirs.
    const dispatch::KernelTable avx2 =
        dispatch::build_table(dispatch::features(), dispatch::Isa::avx2);
    bool have_avx2 = true;
    for (const Interleaved& it : kTypes) {
        const quant::VecDotFn ref = quant::traits(it.type).vec_dot;
        const bool exact = avx2[it.type].vec_dot_isa == dispatch::Isa::avx2;
        have_avx2 &= exact;
        for (int64_t nb : {1, 3, 8}) {
            const int64_t n_in = nb * block_of(it.type), n_w = 32, n_a = 3;
            const std::vector<uint8_t> rows = quant_rows(it.type, n_in, n_w, 7);
            const std::vector<uint8_t> act = act_rows(partner_of(it.type), n_in, n_a, 8);
            const size_t rb = quant::row_bytes(it.type, n_in),
                         ab = quant::row_bytes(partner_of(it.type), n_in);
            std::vector<uint8_t> inter = rows;
            simd::interleave_rows(it.type, inter.data(), n_in, n_w);
            std::vector<float> y(static_cast<size_t>(n_w * n_a));
            it.twin(n_in, inter.data(), rb, n_w, act.data(), ab, n_a, y.data(), n_w);
            for (int64_t t = 0; t < n_a; ++t) {
                for (int64_t r = 0; r < n_w; ++r) {
                    const float want = ref(n_in, rows.data() + rb * r, act.data() + ab * t);
                    const float got = y[static_cast<size_t>(t * n_w + r)];
                    const std::string where = fmt::format("{} row {} activation {} blocks {}",
                                                          quant::traits(it.type).name, r, t, nb);
                    // Same exact block integers, other float orders: ulps of the row's scale.
                    EXPECT_NEAR(got, want,
                                1e-5f * (1.0f + std::fabs(want)) * static_cast<float>(nb))
                        << where;
                    if (exact) {
                        EXPECT_EQ(got, avx2[it.type].vec_dot(n_in, rows.data() + rb * r,
                                                             act.data() + ab * t))
                            << where;
                    }
                }
            }
        }
    }
    if (!have_avx2)
        GTEST_SKIP()
            << "no AVX2 on this CPU: the twins were checked against the scalar reference only";
}

TEST(Repack, Avx512TilesEqualTheTwinsAndTheRowTilesBitForBit) {
    for (const Interleaved& it : kTypes) {
        const dispatch::TypeKernels& k = dispatch::kernels()[it.type];
        if (k.tile_x16 == nullptr)
            GTEST_SKIP() << "no interleaved tiles on this CPU (AVX-512 VNNI)";
        for (int64_t nb : {1, 2, 7}) {
            for (int64_t n_w : {16, 48}) {
                for (int64_t n_a : {1, 2, 3, 4, 5, 8, 9}) {
                    const int64_t n_in = nb * block_of(it.type);
                    const std::vector<uint8_t> plain =
                        quant_rows(it.type, n_in, n_w, static_cast<uint32_t>(nb * 31 + n_w));
                    std::vector<uint8_t> w = plain;
                    simd::interleave_rows(it.type, w.data(), n_in, n_w);
                    const std::vector<uint8_t> act =
                        act_rows(partner_of(it.type), n_in, n_a, static_cast<uint32_t>(n_a));
                    const size_t ab = quant::row_bytes(partner_of(it.type), n_in);
                    const int64_t y_stride = n_w + 3;  // padded: sentinels between the rows
                    std::vector<float> want(static_cast<size_t>(y_stride * n_a + 3), kSentinel);
                    std::vector<float> got = want;
                    it.twin(n_in, w.data(), 0, n_w, act.data(), ab, n_a, want.data(), y_stride);
                    k.tile_x16(n_in, w.data(), 0, n_w, act.data(), ab, n_a, got.data(), y_stride);
                    const std::string where =
                        fmt::format("{}: blocks {}, rows {}, activation rows {}",
                                    quant::traits(it.type).name, nb, n_w, n_a);
                    ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
                        << where;
                    // The row tile over the same rows plain: same bits.
                    std::vector<float> rows_out(want.size(), kSentinel);
                    k.tile(n_in, plain.data(), quant::row_bytes(it.type, n_in), n_w, act.data(), ab,
                           n_a, rows_out.data(), y_stride);
                    ASSERT_EQ(
                        0, std::memcmp(rows_out.data(), want.data(), want.size() * sizeof(float)))
                        << "rows plain, " << where;
                }
            }
        }
    }
}

TEST(Repack, MatmulOverInterleavedRowsEqualsTheTwin) {
    for (const Interleaved& it : kTypes) {
        if (!simd::can_interleave(it.type, quant::QK_K, 16))
            GTEST_SKIP() << "no interleaved tiles on this CPU (AVX-512 VNNI)";
        const int64_t n_in = 4 * quant::QK_K + 3 * block_of(it.type), n_w = 16 * 21, n_a = 6;
        std::vector<uint8_t> w = quant_rows(it.type, n_in, n_w, 3);
        simd::interleave_rows(it.type, w.data(), n_in, n_w);
        std::vector<float> x(static_cast<size_t>(n_in * n_a));
        std::mt19937 rng(4);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (float& v : x) v = normal(rng);
        simd::Activations a;
        a.quantize(partner_of(it.type), x.data(), n_in, n_in, n_a);
        std::vector<float> want(static_cast<size_t>(n_w * n_a));
        it.twin(n_in, w.data(), 0, n_w, a.row(0), a.row_stride(), n_a, want.data(), n_w);

        simd::Matrix m;
        m.data = w.data();
        m.type = it.type;
        m.n_in = n_in;
        m.n_out = n_w;
        m.row_stride = quant::row_bytes(it.type, n_in);
        m.layout = simd::Layout::Interleaved16;
        std::vector<float> got(want.size());
        simd::matmul(m, a, got.data(), n_w);
        for (size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << quant::traits(it.type).name << " output " << i;
    }
}

TEST(Repack, ExactModeNeverInterleaves) {
    const dispatch::KernelTable avx2 =
        dispatch::build_table(dispatch::features(), dispatch::Isa::avx2);
    for (uint32_t id = 0; id < quant::kTypeIdLimit; ++id)
        EXPECT_EQ(avx2[static_cast<Type>(id)].tile_x16, nullptr) << "type id " << id;
}

}  // namespace
}  // namespace strata
