// The matrix product seam: partner-format conversion of activation rows, then one dot product per
// (weight row, activation row), weight rows split across threads.
#include "simd/matmul.h"

#include <algorithm>

#include "simd/dispatch.h"

namespace strata::simd {
namespace {

// The converter llama.cpp's CPU backend applies to an activation row before a product with
// weights whose partner format is `partner` (for Q8_0 / Q8_1 it rounds differently from the
// weight quantizer); null when there is none. The fastest one this CPU runs.
quant::QuantizeFn activation_converter(quant::Type partner) {
    return dispatch::kernels()[partner].quantize_activation;
}

// Below this many multiply-adds a product runs on the calling thread: waking the team costs more
// than it saves. Measured with `strata run --tokens … --threads 1|2` on the golden 256-wide
// llama (2 cores, other builds running): at 1 << 16 two threads decoded 5× slower than one.
constexpr int64_t kParallelWork = 1 << 18;

}  // namespace

bool can_multiply(quant::Type type) {
    const quant::TypeTraits& t = quant::traits(type);
    return t.supported && dispatch::kernels()[type].vec_dot != nullptr &&
           activation_converter(t.partner) != nullptr;
}

void Activations::quantize(quant::Type partner, const float* x, int64_t x_stride, int64_t n_in,
                           int64_t n_rows) {
    type_ = partner;
    n_in_ = n_in;
    n_rows_ = n_rows;
    if (partner == quant::Type::F32) {
        // F32 weights take the float rows as they are: no copy.
        direct_ = x;
        direct_stride_ = x_stride;
        return;
    }
    direct_ = nullptr;
    row_bytes_ = quant::row_bytes(partner, n_in);
    bytes_.resize(row_bytes_ * static_cast<size_t>(n_rows));
    const quant::QuantizeFn convert = activation_converter(partner);
    const bool parallel = n_rows * n_in >= kParallelWork;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t i = 0; i < n_rows; ++i) {
        convert(x + i * x_stride, bytes_.data() + static_cast<size_t>(i) * row_bytes_, n_in);
    }
}

bool takes_gemm_order(quant::Type type, int64_t n_in, int64_t n_out, int64_t n_rows, Path path) {
    if (path == Path::Experts || (path == Path::Strided && type == quant::Type::F32)) return false;
    if (n_rows < 2 || n_out % 4 != 0) return false;
    switch (type) {
        case quant::Type::F32:
        case quant::Type::F16:
            return n_in % 16 == 0;
        case quant::Type::BF16:
            return n_in % 32 == 0;
        default:
            return false;
    }
}

namespace {

// Tile sizes of the tile path: 16 weight rows (a K-quant row of 2048 is 1.1 KiB, so a chunk
// stays in L1 while every activation row passes) by 64 activation rows (Q8_K rows of 2048 take
// 2.3 KiB each: 150 KiB of activations stay in L2 across the chunk's weight rows).
constexpr int64_t kTileWeightRows = 16;
constexpr int64_t kTileActivationRows = 64;

void matmul_tiles(dispatch::TileFn tile, const Matrix& w, const Activations& a, float* y,
                  int64_t y_stride, bool parallel) {
    const int64_t n_out = w.n_out, n_rows = a.n_rows();
    const size_t a_stride = n_rows > 1 ? static_cast<size_t>(static_cast<const uint8_t*>(a.row(1)) -
                                                             static_cast<const uint8_t*>(a.row(0)))
                                       : 0;
    const int64_t n_chunks = (n_out + kTileWeightRows - 1) / kTileWeightRows;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t c = 0; c < n_chunks; ++c) {
        const int64_t r0 = c * kTileWeightRows;
        const int64_t nr = std::min(kTileWeightRows, n_out - r0);
        for (int64_t t0 = 0; t0 < n_rows; t0 += kTileActivationRows) {
            const int64_t nt = std::min(kTileActivationRows, n_rows - t0);
            tile(w.n_in, w.row(r0), w.row_stride, nr, a.row(t0), a_stride, nt,
                 y + t0 * y_stride + r0, y_stride);
        }
    }
}

}  // namespace

void matmul(const Matrix& w, const Activations& a, float* y, int64_t y_stride, Path path) {
    const int64_t n_in = w.n_in, n_out = w.n_out, n_rows = a.n_rows();
    const dispatch::TypeKernels& k = dispatch::kernels()[w.type];
    if (k.tile != nullptr) {
        matmul_tiles(k.tile, w, a, y, y_stride, n_out * n_rows * n_in >= kParallelWork);
        return;
    }
    const quant::VecDotFn dot =
        takes_gemm_order(w.type, n_in, n_out, n_rows, path) ? k.gemm_dot : k.vec_dot;
    const bool parallel = n_out * n_rows * n_in >= kParallelWork;
    // Weight rows outermost: each row is read from memory once and reused for every activation
    // row while it is in cache.
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < n_out; ++r) {
        const uint8_t* wr = w.row(r);
        for (int64_t t = 0; t < n_rows; ++t) y[t * y_stride + r] = dot(n_in, wr, a.row(t));
    }
}

void matmul(const Matrix& w, const float* x, int64_t x_stride, int64_t n_rows, float* y,
            int64_t y_stride, Activations& scratch, Path path) {
    scratch.quantize(quant::traits(w.type).partner, x, x_stride, w.n_in, n_rows);
    matmul(w, scratch, y, y_stride, path);
}

}  // namespace strata::simd
