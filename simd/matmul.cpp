// The matrix product seam: partner-format conversion of activation rows, then tiles of (weight
// rows × activation rows), weight rows split in chunks over the pass's team.
#include "simd/matmul.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "simd/dispatch.h"
#include "simd/parallel.h"
#include "simd/repack.h"

namespace strata::simd {
namespace {

// The converter llama.cpp's CPU backend applies to an activation row before a product with
// weights whose partner format is `partner` (for Q8_0 / Q8_1 it rounds differently from the
// weight quantizer); null when there is none. The fastest one this CPU runs.
quant::QuantizeFn activation_converter(quant::Type partner) {
    return dispatch::kernels()[partner].quantize_activation;
}

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
    uint8_t* out = bytes_.data();
    const size_t rb = row_bytes_;
    parallel_for(n_rows, n_rows * n_in, [&](int64_t i) {
        convert(x + i * x_stride, out + static_cast<size_t>(i) * rb, n_in);
    });
}

void Activations::gather(const Activations& src, const int64_t* rows, int64_t n_rows) {
    type_ = src.type_;
    n_in_ = src.n_in_;
    n_rows_ = n_rows;
    direct_ = nullptr;  // F32 rows are copied too: the source's may be gone by the product
    row_bytes_ = quant::row_bytes(type_, n_in_);
    bytes_.resize(row_bytes_ * static_cast<size_t>(n_rows));
    for (int64_t i = 0; i < n_rows; ++i)
        std::memcpy(bytes_.data() + static_cast<size_t>(i) * row_bytes_, src.row(rows[i]),
                    row_bytes_);
}

bool takes_gemm_order(quant::Type type, int64_t n_in, int64_t n_out, int64_t n_rows, Path path) {
    if (path == Path::Experts || path == Path::Rows ||
        (path == Path::Strided && type == quant::Type::F32))
        return false;
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

int64_t row_chunk(int64_t n_out, int threads) {
    // Four tasks per thread: enough to even out a tail, few enough that claiming one costs
    // nothing next to its rows.
    const int64_t tasks = 4 * static_cast<int64_t>(std::max(threads, 1));
    const int64_t rows = (n_out + tasks - 1) / tasks;
    return std::max<int64_t>(16, (rows + 15) / 16 * 16);
}

void matmul_rows(const Matrix& w, int64_t r0, int64_t r1, const Activations& a, float* y,
                 int64_t y_stride, Path path) {
    const int64_t n_in = w.n_in, n_rows = a.n_rows();
    if (r1 <= r0 || n_rows == 0) return;
    const dispatch::TypeKernels& k = dispatch::kernels()[w.type];
    if (w.layout == Layout::Interleaved16) {
        // Whole groups of 16 rows: row_chunk and the callers' slices keep to them.
        if (k.tile_x16 == nullptr || r0 % kInterleaveRows != 0 ||
            ((r1 - r0) % kInterleaveRows != 0)) {
            // A bug, not bad input: rows were interleaved that this CPU or this split cannot
            // multiply. Stop before writing wrong numbers.
            std::fprintf(stderr, "strata: internal error: interleaved rows [%lld, %lld) of %lld\n",
                         static_cast<long long>(r0), static_cast<long long>(r1),
                         static_cast<long long>(w.n_out));
            std::abort();
        }
        k.tile_x16(n_in, w.row(r0), w.row_stride, r1 - r0, a.row(0), a.row_stride(), n_rows,
                   y + r0, y_stride);
        return;
    }
    // llama.cpp's order for the float types depends on the whole product's shape, not the chunk.
    const bool gemm = takes_gemm_order(w.type, n_in, w.n_out, n_rows, path);
    if (k.tile && !gemm) {
        k.tile(n_in, w.row(r0), w.row_stride, r1 - r0, a.row(0), a.row_stride(), n_rows, y + r0,
               y_stride);
        return;
    }
    const quant::VecDotFn dot = gemm ? k.gemm_dot : k.vec_dot;
    // Weight rows outermost: each row is read from memory once and reused for every activation
    // row while it is in cache.
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* wr = w.row(r);
        for (int64_t t = 0; t < n_rows; ++t) y[t * y_stride + r] = dot(n_in, wr, a.row(t));
    }
}

void matmul(const Matrix& w, const Activations& a, float* y, int64_t y_stride, Path path) {
    const int64_t n_out = w.n_out;
    const int64_t chunk = row_chunk(n_out, team_size());
    const int64_t n_tasks = (n_out + chunk - 1) / chunk;
    parallel_for(n_tasks, n_out * a.n_rows() * w.n_in, [&](int64_t i) {
        const int64_t r0 = i * chunk;
        matmul_rows(w, r0, std::min(n_out, r0 + chunk), a, y, y_stride, path);
    });
}

void matmul_batch(std::span<const Product> products) {
    struct Chunk {
        size_t product;
        int64_t r0, r1;
    };
    int64_t rows = 0, work = 0;
    for (const Product& p : products) {
        rows += p.w->n_out;
        work += p.w->n_out * p.a->n_rows() * p.w->n_in;
    }
    const int64_t size = row_chunk(rows, team_size());
    std::vector<Chunk> chunks;
    for (size_t i = 0; i < products.size(); ++i) {
        const int64_t n_out = products[i].w->n_out;
        for (int64_t r0 = 0; r0 < n_out; r0 += size)
            chunks.push_back({i, r0, std::min(n_out, r0 + size)});
    }
    parallel_for(static_cast<int64_t>(chunks.size()), work, [&](int64_t c) {
        const Chunk& ch = chunks[static_cast<size_t>(c)];
        const Product& p = products[ch.product];
        matmul_rows(*p.w, ch.r0, ch.r1, *p.a, p.y, p.y_stride, p.path);
    });
}

void matmul(const Matrix& w, const float* x, int64_t x_stride, int64_t n_rows, float* y,
            int64_t y_stride, Activations& scratch, Path path) {
    scratch.quantize(quant::traits(w.type).partner, x, x_stride, w.n_in, n_rows);
    matmul(w, scratch, y, y_stride, path);
}

}  // namespace strata::simd
