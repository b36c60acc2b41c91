// Tile kernels (dispatch::TileFn) against their scalar twin, ref::tile (one reference vec_dot per
// output), at every ISA level this CPU runs, and the activation quantizers of every level against
// the scalar references byte for byte.
//
//  - Exact tiles: weight blocks of random bytes with power-of-two scales and activation levels in
//    [-3, 3] with scale 2^-3. Every product, block sum and running sum is then a float without
//    rounding (at most 4 super-blocks: see quant_vec_dot_test.cpp), so any order of the same
//    integer sums gives the same float: the tile must equal the reference bit for bit. This
//    checks the integer parts (unpacking, scales, mins, offsets) exactly.
//  - Realistic tiles: quantized normal weights and activations. Reference and tile sum the same
//    exact block integers in different float orders; each is within (nb·16 + 16)·u·S of the
//    exact value, S = Σ|a_i|·(|w_i| + 2·|offset_i|) (the level part of a weight is at most
//    |w| + |offset|, the offset part |offset|; 16 lanes per block in the tile, one rounding per
//    block plus a few per lane in either), so they differ by at most twice that.
//  - Shapes: ragged n_w and n_a (1..13, past the kernels' groups of 8), block counts 1..9,
//    padded strides; sentinels around the output catch writes outside the tile.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "simd/dispatch.h"
#include "simd/quant.h"
#include "simd/ref/common.h"
#include "simd/ref/ref.h"

namespace strata {
namespace {

using namespace quant;
using dispatch::Isa;

constexpr double kUnit = 1.0 / (1 << 24);
constexpr float kSentinel = -12345.5f;

const Type kQuantTypes[] = {Type::Q4_0, Type::Q4_1, Type::Q5_0, Type::Q5_1, Type::Q8_0,
                            Type::Q2_K, Type::Q3_K, Type::Q4_K, Type::Q5_K, Type::Q6_K};

bool cpu_runs(Isa isa) {
    const dispatch::CpuFeatures& f = dispatch::features();
    switch (isa) {
        case Isa::scalar:
            return true;
        case Isa::avx2:
            return f.avx2_set();
        case Isa::avx512:
            return f.avx512_set();
        case Isa::amx:
            return f.amx_set();
    }
    return false;
}

// Offset of a format's scale field d (f16) in its block, and of dmin/m where there is one.
struct ScaleFields {
    int d = -1, min = -1;
};
ScaleFields scale_fields(Type type) {
    switch (type) {
        case Type::Q4_0:
            return {static_cast<int>(offsetof(block_q4_0, d))};
        case Type::Q5_0:
            return {static_cast<int>(offsetof(block_q5_0, d))};
        case Type::Q8_0:
            return {static_cast<int>(offsetof(block_q8_0, d))};
        case Type::Q4_1:
            return {static_cast<int>(offsetof(block_q4_1, d)),
                    static_cast<int>(offsetof(block_q4_1, m))};
        case Type::Q5_1:
            return {static_cast<int>(offsetof(block_q5_1, d)),
                    static_cast<int>(offsetof(block_q5_1, m))};
        case Type::Q2_K:
            return {static_cast<int>(offsetof(block_q2_K, d)),
                    static_cast<int>(offsetof(block_q2_K, dmin))};
        case Type::Q3_K:
            return {static_cast<int>(offsetof(block_q3_K, d))};
        case Type::Q4_K:
            return {static_cast<int>(offsetof(block_q4_K, d)),
                    static_cast<int>(offsetof(block_q4_K, dmin))};
        case Type::Q5_K:
            return {static_cast<int>(offsetof(block_q5_K, d)),
                    static_cast<int>(offsetof(block_q5_K, dmin))};
        case Type::Q6_K:
            return {static_cast<int>(offsetof(block_q6_K, d))};
        default:
            return {};
    }
}

// n_rows rows of `row_stride` bytes (padding filled with junk that must not be read as data).
struct Rows {
    std::vector<uint8_t> bytes;  // (n_rows, stride)
    size_t stride = 0;
    const uint8_t* row(int64_t r) const { return bytes.data() + static_cast<size_t>(r) * stride; }
    uint8_t* row(int64_t r) { return bytes.data() + static_cast<size_t>(r) * stride; }
};

Rows make_rows(Type type, int64_t n, int64_t n_rows, size_t pad, std::mt19937& rng) {
    Rows r;
    r.stride = row_bytes(type, n) + pad;
    r.bytes.resize(r.stride * static_cast<size_t>(n_rows));
    for (auto& b : r.bytes) b = static_cast<uint8_t>(rng());
    return r;
}

// Exact weights: random bytes, scale 2^-4 and min -2^-4 (as float minimum) or 2^-4 (K mins).
void set_power_of_two_scales(Type type, Rows& w, int64_t n, int64_t n_rows) {
    const TypeTraits& t = traits(type);
    const ScaleFields f = scale_fields(type);
    const bool float_min = type == Type::Q4_1 || type == Type::Q5_1;
    for (int64_t r = 0; r < n_rows; ++r) {
        for (int64_t b = 0; b < n / t.block_size; ++b) {
            uint8_t* blk = w.row(r) + static_cast<size_t>(b) * t.block_bytes;
            const uint16_t d = 0x2c00;  // 2^-4
            std::memcpy(blk + f.d, &d, 2);
            if (f.min >= 0) {
                const uint16_t m = float_min ? uint16_t{0x2c00 | 0x8000} : d;
                std::memcpy(blk + f.min, &m, 2);
            }
        }
    }
}

// Exact activations: levels in [-3, 3], scale 2^-3, sums filled in by the format's definition.
void set_small_activations(Type partner, Rows& a, int64_t n, int64_t n_rows, std::mt19937& rng) {
    std::uniform_int_distribution<int> level(-3, 3);
    const float scale = 0.125f;
    for (int64_t r = 0; r < n_rows; ++r) {
        uint8_t* row = a.row(r);
        if (partner == Type::Q8_K) {
            auto* blocks = reinterpret_cast<block_q8_K*>(row);
            for (int64_t b = 0; b < n / QK_K; ++b) {
                blocks[b].d = scale;
                for (int g = 0; g < QK_K / 16; ++g) {
                    int sum = 0;
                    for (int j = 0; j < 16; ++j) {
                        const int l = level(rng);
                        blocks[b].qs[16 * g + j] = static_cast<int8_t>(l);
                        sum += l;
                    }
                    blocks[b].bsums[g] = static_cast<int16_t>(sum);
                }
            }
        } else {
            const bool q8_1 = partner == Type::Q8_1;
            const size_t bytes = q8_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
            for (int64_t b = 0; b < n / 32; ++b) {
                uint8_t* blk = row + static_cast<size_t>(b) * bytes;
                const uint16_t d = fp32_to_fp16(scale);
                std::memcpy(blk, &d, 2);
                auto* qs = reinterpret_cast<int8_t*>(blk + (q8_1 ? 4 : 2));
                int sum = 0;
                for (int j = 0; j < 32; ++j) {
                    qs[j] = static_cast<int8_t>(level(rng));
                    sum += qs[j];
                }
                if (q8_1) {
                    const uint16_t s = fp32_to_fp16(scale * static_cast<float>(sum));
                    std::memcpy(blk + 2, &s, 2);
                }
            }
        }
    }
}

// |offset| of every element of a weight row (the min term), from the block fields.
std::vector<double> offsets(Type type, const uint8_t* row, int64_t n) {
    std::vector<double> off(static_cast<size_t>(n), 0.0);
    const TypeTraits& t = traits(type);
    for (int64_t i = 0; i < n; ++i) {
        const uint8_t* blk = row + static_cast<size_t>(i / t.block_size) * t.block_bytes;
        const int e = static_cast<int>(i % t.block_size);
        uint16_t m = 0;
        if (type == Type::Q4_1 || type == Type::Q5_1) {
            std::memcpy(&m, blk + 2, 2);
            off[i] = std::fabs(fp16_to_fp32(m));
        } else if (type == Type::Q2_K) {
            const auto* b = reinterpret_cast<const block_q2_K*>(blk);
            off[i] = fp16_to_fp32(b->dmin) * (b->scales[e / 16] >> 4);
        } else if (type == Type::Q4_K || type == Type::Q5_K) {
            uint8_t sc, mn;
            ref::unpack_scale_min_k4(e / 32, blk + 4, &sc, &mn);
            std::memcpy(&m, blk + 2, 2);
            off[i] = fp16_to_fp32(m) * mn;
        }
    }
    return off;
}

struct Shape {
    int64_t blocks, n_w, n_a;
};

// Runs `tile` and the scalar twin on one shape; exact: bit for bit, else within the bound above.
void check_tile(Type type, dispatch::TileFn tile, const Shape& s, bool exact, std::mt19937& rng,
                const std::string& what) {
    const TypeTraits& t = traits(type);
    const int64_t n = t.block_size * s.blocks;
    const std::string where = what + " " + std::string(type_name(type)) +
                              " n=" + std::to_string(n) + " n_w=" + std::to_string(s.n_w) +
                              " n_a=" + std::to_string(s.n_a) + (exact ? " exact" : "");
    SCOPED_TRACE(where);
    // Padded strides that keep the blocks' 2- and 4-byte scale fields aligned, as every row in
    // a model is; not multiples of 64, so no kernel may assume vector alignment.
    Rows w = make_rows(type, n, s.n_w, 12, rng);
    Rows a = make_rows(t.partner, n, s.n_a, 8, rng);
    if (exact) {
        set_power_of_two_scales(type, w, n, s.n_w);
        set_small_activations(t.partner, a, n, s.n_a, rng);
    } else {
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> f(static_cast<size_t>(n));
        for (int64_t r = 0; r < s.n_w; ++r) {
            for (float& v : f) v = 0.02f * normal(rng) + 0.005f;  // a mean, so mins matter
            quantize_row(type, f.data(), w.row(r), n);
        }
        for (int64_t r = 0; r < s.n_a; ++r) {
            for (float& v : f) v = normal(rng);
            traits(t.partner).quantize_activation(f.data(), a.row(r), n);
        }
    }
    const int64_t y_stride = s.n_w + 3;
    const size_t y_size = static_cast<size_t>(y_stride * s.n_a + 2);
    std::vector<float> fast(y_size, kSentinel), want(y_size, kSentinel);
    // Output starts one float in, so that a write before the tile hits a sentinel too.
    tile(n, w.row(0), w.stride, s.n_w, a.row(0), a.stride, s.n_a, fast.data() + 1, y_stride);
    ref::tile(t.vec_dot, n, w.row(0), w.stride, s.n_w, a.row(0), a.stride, s.n_a, want.data() + 1,
              y_stride);
    std::vector<float> wd(static_cast<size_t>(n)), ad(static_cast<size_t>(n));
    for (size_t i = 0; i < y_size; ++i) {
        const int64_t k = static_cast<int64_t>(i) - 1;
        const bool inside = k >= 0 && k % y_stride < s.n_w && k / y_stride < s.n_a;
        if (!inside) {
            ASSERT_EQ(fast[i], kSentinel) << "write outside the tile at y[" << k << "]";
            continue;
        }
        const int64_t r = k % y_stride, tt = k / y_stride;
        if (exact) {
            ASSERT_EQ(fast[i], want[i]) << "row " << r << " activation " << tt;
            continue;
        }
        dequantize_row(type, w.row(r), wd.data(), n);
        dequantize_row(t.partner, a.row(tt), ad.data(), n);
        const std::vector<double> off = offsets(type, w.row(r), n);
        double sum_abs = 0.0;
        for (int64_t e = 0; e < n; ++e)
            sum_abs += std::fabs(ad[e]) * (std::fabs(wd[e]) + 2 * off[e]);
        const double bound = 2.0 * static_cast<double>(16 * s.blocks + 16) * kUnit * sum_abs;
        ASSERT_NEAR(fast[i], want[i], bound) << "row " << r << " activation " << tt;
    }
}

const Shape kShapes[] = {{1, 1, 1}, {1, 3, 2},  {2, 1, 8},  {3, 5, 9}, {4, 2, 13},
                         {1, 8, 7}, {2, 17, 3}, {4, 4, 16}, {3, 1, 5}, {2, 6, 1}};

class QuantTileIsa : public ::testing::TestWithParam<Isa> {};

TEST_P(QuantTileIsa, TilesMatchTheScalarTwin) {
    const Isa isa = GetParam();
    const std::string name(dispatch::isa_name(isa));
    if (!cpu_runs(isa))
        GTEST_SKIP() << "this CPU (or its OS) does not support " << name
                     << ": its tile kernels cannot run here and are not checked";
    const dispatch::KernelTable table = dispatch::build_table(dispatch::features(), isa);
    std::mt19937 rng(31);
    int checked = 0;
    for (Type type : kQuantTypes) {
        const dispatch::TypeKernels& k = table[type];
        if (k.tile == nullptr || k.tile_isa != isa) continue;
        ++checked;
        for (const Shape& s : kShapes) {
            // Exact rows: up to 4 super-blocks keep every partial sum exact.
            if (traits(type).block_size < QK_K || s.blocks <= 4)
                check_tile(type, k.tile, s, true, rng, name);
            check_tile(type, k.tile, s, false, rng, name);
        }
        // A longer row, as in a model (2048 wide for the K-quants).
        check_tile(type, k.tile, {2048 / traits(type).block_size, 3, 9}, false, rng, name);
    }
    std::printf("[ isa      ] %s: %d tile kernels checked against the scalar twin\n", name.c_str(),
                checked);
    if (checked == 0)
        GTEST_SKIP() << "no tile kernel registers at " << name << " (nothing to check)";
    if (isa == Isa::avx512) {
        // What this level promises the decode path: tiles for what Q4_K_M files hold.
        for (Type type : {Type::Q4_K, Type::Q6_K, Type::Q8_0})
            EXPECT_EQ(table[type].tile_isa, Isa::avx512) << type_name(type);
    }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, QuantTileIsa, ::testing::Values(Isa::avx2, Isa::avx512, Isa::amx),
                         [](const ::testing::TestParamInfo<Isa>& param) {
                             return std::string(dispatch::isa_name(param.param));
                         });

// On realistic rows (2048 wide, 5 weight rows, 11 activation rows: groups of 4, 4 and 3), every
// float of `tile` equals `vec_dot`'s for its pair bit for bit.
void expect_tile_is_vec_dot(Type type, dispatch::TileFn tile, quant::VecDotFn vec_dot,
                            std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const TypeTraits& t = traits(type);
    const int64_t n = 2048, n_w = 5, n_a = 11;
    Rows w = make_rows(type, n, n_w, 0, rng);
    Rows a = make_rows(t.partner, n, n_a, 0, rng);
    std::vector<float> f(static_cast<size_t>(n));
    for (int64_t r = 0; r < n_w; ++r) {
        for (float& v : f) v = 0.02f * normal(rng) + 0.005f;
        quantize_row(type, f.data(), w.row(r), n);
    }
    for (int64_t r = 0; r < n_a; ++r) {
        for (float& v : f) v = normal(rng);
        traits(t.partner).quantize_activation(f.data(), a.row(r), n);
    }
    std::vector<float> y(static_cast<size_t>(n_w * n_a));
    tile(n, w.row(0), w.stride, n_w, a.row(0), a.stride, n_a, y.data(), n_w);
    for (int64_t tt = 0; tt < n_a; ++tt)
        for (int64_t r = 0; r < n_w; ++r)
            ASSERT_EQ(y[static_cast<size_t>(tt * n_w + r)], vec_dot(n, w.row(r), a.row(tt)))
                << type_name(type) << " row " << r << " activation " << tt;
}

// STRATA_ISA=avx2 is the bit-for-bit mode: the scalar level holds no tile, and the avx2 level
// only tiles that give its vec_dot's floats (llama.cpp's AVX2 order) exactly: those of the
// K-quants Q4_K_M and Q5_K_M files are made of.
TEST(QuantTile, ExactModeTilesAreItsVecDot) {
    dispatch::CpuFeatures all;
    all.avx2 = all.fma = all.f16c = true;
    all.avx512f = all.avx512bw = all.avx512vl = all.avx512dq = all.avx512vnni = true;
    all.avx512bf16 = true;
    const dispatch::KernelTable scalar = dispatch::build_table(all, Isa::scalar);
    for (Type type : kQuantTypes) EXPECT_EQ(scalar[type].tile, nullptr) << type_name(type);
    const dispatch::KernelTable exact = dispatch::build_table(all, Isa::avx2);
    for (Type type : kQuantTypes) {
        const bool tiled = type == Type::Q4_K || type == Type::Q5_K || type == Type::Q6_K;
        EXPECT_EQ(exact[type].tile != nullptr, tiled) << type_name(type);
    }
    if (!cpu_runs(Isa::avx2))
        GTEST_SKIP() << "this CPU (or its OS) lacks AVX2: its tiles cannot run here";
    std::mt19937 rng(43);
    for (Type type : {Type::Q4_K, Type::Q5_K, Type::Q6_K}) {
        ASSERT_EQ(exact[type].tile_isa, Isa::avx2) << type_name(type);
        ASSERT_EQ(exact[type].vec_dot_isa, Isa::avx2) << type_name(type);
        expect_tile_is_vec_dot(type, exact[type].tile, exact[type].vec_dot, rng);
    }
}

// The AVX-512 tiles fold their lanes to the AVX2 kernels' (llama.cpp's order) for every type but
// Q3_K: on realistic rows they must give the AVX2 vec_dot's floats bit for bit, so the default
// mode stays as exact as STRATA_ISA=avx2.
TEST(QuantTile, Avx512TilesSumInLlamaCppsAvx2Order) {
    if (!cpu_runs(Isa::avx512))
        GTEST_SKIP() << "this CPU (or its OS) lacks AVX-512: its tiles cannot run here";
    const dispatch::KernelTable fast = dispatch::build_table(dispatch::features(), Isa::avx512);
    const dispatch::KernelTable exact = dispatch::build_table(dispatch::features(), Isa::avx2);
    std::mt19937 rng(41);
    for (Type type :
         {Type::Q4_0, Type::Q5_0, Type::Q8_0, Type::Q2_K, Type::Q4_K, Type::Q5_K, Type::Q6_K}) {
        ASSERT_NE(fast[type].tile, nullptr) << type_name(type);
        ASSERT_EQ(fast[type].tile_isa, Isa::avx512) << type_name(type);
        ASSERT_EQ(exact[type].vec_dot_isa, Isa::avx2) << type_name(type);
        expect_tile_is_vec_dot(type, fast[type].tile, exact[type].vec_dot, rng);
    }
}

// ---------------------------------------------------------------------------------------------
// Activation quantizers of every level: the same bytes as the scalar references.

class QuantActivationIsa : public ::testing::TestWithParam<Isa> {};

TEST_P(QuantActivationIsa, SameBytesAsTheReference) {
    const Isa isa = GetParam();
    const std::string name(dispatch::isa_name(isa));
    if (!cpu_runs(isa))
        GTEST_SKIP() << "this CPU (or its OS) does not support " << name
                     << ": its activation quantizers cannot run here and are not checked";
    const dispatch::KernelTable table = dispatch::build_table(dispatch::features(), isa);
    std::mt19937 rng(37);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    int checked = 0;
    for (Type partner : {Type::Q8_0, Type::Q8_1, Type::Q8_K}) {
        const dispatch::TypeKernels& k = table[partner];
        if (k.quantize_activation_isa != isa) continue;
        ++checked;
        const int64_t unit = traits(partner).block_size;
        for (int64_t blocks : {1, 2, 7, 16}) {
            const int64_t n = unit * blocks;
            std::vector<float> x(static_cast<size_t>(n));
            for (int variant = 0; variant < 6; ++variant) {
                for (float& v : x) v = normal(rng) * (variant == 1 ? 1e-30f : 3.0f);
                if (variant == 2) x.assign(x.size(), 0.0f);  // zero blocks
                if (variant == 3) {  // ties of |max| with both signs: the first one wins
                    x[1] = 50.0f;
                    x[0] = -50.0f;
                }
                if (variant == 4) {  // exact halves: rounding ties
                    for (size_t i = 0; i < x.size(); ++i)
                        x[i] = 0.5f * static_cast<float>(static_cast<int>(i % 255) - 127);
                }
                if (variant == 5) x[3] = std::nanf("");
                std::vector<uint8_t> fast(row_bytes(partner, n)), want(fast.size());
                k.quantize_activation(x.data(), fast.data(), n);
                traits(partner).quantize_activation(x.data(), want.data(), n);
                EXPECT_EQ(fast, want)
                    << name << " " << type_name(partner) << " n = " << n << " variant " << variant;
            }
        }
    }
    std::printf("[ isa      ] %s: %d activation quantizers checked against the references\n",
                name.c_str(), checked);
    if (isa == Isa::avx512) {
        EXPECT_EQ(checked, 3) << "Q8_0, Q8_1 and Q8_K register at avx512";
    }
    if (checked == 0)
        GTEST_SKIP() << "no activation quantizer registers at " << name << " (nothing to check)";
}

INSTANTIATE_TEST_SUITE_P(AllIsas, QuantActivationIsa,
                         ::testing::Values(Isa::avx2, Isa::avx512, Isa::amx),
                         [](const ::testing::TestParamInfo<Isa>& param) {
                             return std::string(dispatch::isa_name(param.param));
                         });

}  // namespace
}  // namespace strata
