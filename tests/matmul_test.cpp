// The product seam (simd/matmul.h): chunked, batched and gathered products give exactly what one
// dot product per (weight row, activation row) gives, inside and outside a pass.
#include "simd/matmul.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "simd/dispatch.h"
#include "simd/parallel.h"

namespace strata::simd {
namespace {

struct Weights {
    std::vector<uint8_t> bytes;  // (n_out, row_bytes) quantized rows
    Matrix m;
};

Weights random_weights(quant::Type type, int64_t n_in, int64_t n_out, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    Weights w;
    const size_t rb = quant::row_bytes(type, n_in);
    w.bytes.resize(rb * static_cast<size_t>(n_out));
    std::vector<float> row(static_cast<size_t>(n_in));
    for (int64_t r = 0; r < n_out; ++r) {
        for (float& x : row) x = dist(rng);
        quant::quantize_row(type, row.data(), w.bytes.data() + static_cast<size_t>(r) * rb, n_in);
    }
    w.m = {w.bytes.data(), type, n_in, n_out, rb};
    return w;
}

std::vector<float> random_rows(int64_t n_rows, int64_t n_in, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n_rows * n_in));
    for (float& v : x) v = dist(rng);
    return x;
}

// y[t, r] = vec_dot(row r, activation row t): the definition every path must reproduce.
std::vector<float> expected(const Matrix& w, const Activations& a) {
    const quant::VecDotFn dot = dispatch::kernels()[w.type].vec_dot;
    std::vector<float> y(static_cast<size_t>(a.n_rows() * w.n_out));
    for (int64_t t = 0; t < a.n_rows(); ++t)
        for (int64_t r = 0; r < w.n_out; ++r)
            y[static_cast<size_t>(t * w.n_out + r)] = dot(w.n_in, w.row(r), a.row(t));
    return y;
}

TEST(Matmul, BatchedChunkedAndGatheredProductsEqualTheDotProducts) {
    // Ragged row counts (not multiples of the 16-row chunks), two types whose tile kernels (when
    // an ISA registers one) may sum in another order: compared with that order's own result.
    for (quant::Type type : {quant::Type::Q8_0, quant::Type::Q4_K}) {
        SCOPED_TRACE(quant::type_name(type));
        const int64_t n_in = 512, n_rows = 5;
        const Weights a = random_weights(type, n_in, 333, 1), b = random_weights(type, n_in, 70, 2);
        const std::vector<float> x = random_rows(n_rows, n_in, 3);
        Activations act;
        act.quantize(quant::traits(type).partner, x.data(), n_in, n_in, n_rows);
        const bool tiled = dispatch::kernels()[type].tile != nullptr;

        for (int threads : {1, 2}) {
            std::vector<float> ya(static_cast<size_t>(n_rows * 333)),
                yb(static_cast<size_t>(n_rows * 70));
            std::vector<float> ya1(ya.size());
            run_pass(threads, [&] {
                const Product both[] = {{&a.m, &act, ya.data(), 333}, {&b.m, &act, yb.data(), 70}};
                matmul_batch(both);
                matmul(a.m, act, ya1.data(), 333);
            });
            EXPECT_EQ(ya, ya1) << "a batch and a lone product differ";
            if (!tiled) {
                EXPECT_EQ(ya, expected(a.m, act));
                EXPECT_EQ(yb, expected(b.m, act));
            }
        }

        // Rows 4, 0, 4 gathered from the converted batch are those rows converted again.
        const int64_t pick[] = {4, 0, 4};
        Activations gathered;
        gathered.gather(act, pick, 3);
        ASSERT_EQ(gathered.n_rows(), 3);
        for (int64_t i = 0; i < 3; ++i) {
            const size_t rb = quant::row_bytes(act.type(), n_in);
            EXPECT_EQ(0, std::memcmp(gathered.row(i), act.row(pick[i]), rb)) << "row " << i;
        }
    }
}

}  // namespace
}  // namespace strata::simd
