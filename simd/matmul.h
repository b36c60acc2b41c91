// The one seam through which the forward pass multiplies weights by activations.
//
// A weight matrix holds n_out rows of n_in elements in one quant type. Activations are float
// rows; before a product they are converted once to the weight type's partner format (Q8_K for
// the K-quants, Q8_0 / Q8_1 for the legacy types, F16 / BF16 for half weights, F32 for F32), as
// llama.cpp's CPU backend does, and every output is the partner-format dot product of one weight
// row with one activation row. Agreeing with the reference to float rounding depends on that
// conversion (golden/README.md, "Why activations must be quantized too").
//
// Faster kernels (multi-row, AVX-512, AMX) slot in behind matmul() without changing callers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "simd/quant.h"

namespace strata::simd {

// How a matrix's rows lie in memory: as in the file, or regrouped sixteen at a time at load
// for the interleaved kernels (simd/repack.h; contiguous rows, n_out a multiple of 16, and any
// view of it starts on a multiple of 16 rows).
enum class Layout { Rows, Interleaved16 };

// A view of weight rows: row r starts at data + r * row_stride bytes (for Interleaved16, row
// group r / 16 does).
struct Matrix {
    const uint8_t* data = nullptr;
    quant::Type type = quant::Type::F32;
    int64_t n_in = 0;       // elements per row; a multiple of the type's block size
    int64_t n_out = 0;      // rows
    size_t row_stride = 0;  // bytes from one row to the next (≥ row_bytes(type, n_in))
    Layout layout = Layout::Rows;

    const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_stride; }
    // Rows [first, first + count) as a matrix of their own.
    Matrix rows(int64_t first, int64_t count) const {
        Matrix m = *this;
        m.data = row(first);
        m.n_out = count;
        return m;
    }
};

// Activation rows converted to one partner format. Reused across products that share the input
// (Q, K and V of one layer), so each row is converted once.
class Activations {
  public:
    // Converts n_rows rows of n_in floats (row i at x + i * x_stride) to `partner`.
    void quantize(quant::Type partner, const float* x, int64_t x_stride, int64_t n_in,
                  int64_t n_rows);

    // Rows rows[0], rows[1], … of `src` (already converted), copied: a gathered batch, e.g. the
    // tokens routed to one expert, converted once with the others.
    void gather(const Activations& src, const int64_t* rows, int64_t n_rows);

    quant::Type type() const { return type_; }
    int64_t n_in() const { return n_in_; }
    int64_t n_rows() const { return n_rows_; }
    // Bytes from one converted row to the next.
    size_t row_stride() const {
        return direct_ ? static_cast<size_t>(direct_stride_) * sizeof(float) : row_bytes_;
    }
    const void* row(int64_t i) const {
        return direct_
                   ? static_cast<const void*>(direct_ + i * direct_stride_)
                   : static_cast<const void*>(bytes_.data() + static_cast<size_t>(i) * row_bytes_);
    }

    // A converted row, for a caller that patches it (not for the F32 partner, whose rows are the
    // caller's own).
    void* mutable_row(int64_t i) { return bytes_.data() + static_cast<size_t>(i) * row_bytes_; }

  private:
    quant::Type type_ = quant::Type::F32;
    int64_t n_in_ = 0;
    int64_t n_rows_ = 0;
    size_t row_bytes_ = 0;
    std::vector<uint8_t> bytes_;     // (n_rows, row_bytes_) converted rows
    const float* direct_ = nullptr;  // F32 partner: the caller's rows, used in place
    int64_t direct_stride_ = 0;
};

// Which of llama.cpp's product paths a product stands for. They sum the float formats (F32, F16,
// BF16) in different orders (simd/float_order.h), so each product says how the reference
// reaches it:
//  - Gemm: ggml_mul_mat with contiguous activation rows. llama.cpp hands it to llamafile's
//    tinyBLAS when there are at least two rows, n_out is a multiple of 4 and n_in a multiple of
//    the vector step (16; 32 for BF16); otherwise one vec_dot per output.
//  - Strided: ggml_mul_mat with activations that are a strided view (MLA's per-head query
//    absorption). F32 weights take them as they are, one vec_dot per output; for the other
//    types they are first converted into a contiguous buffer, which then goes as Gemm.
//  - Experts: ggml_mul_mat_id, one vec_dot per output whatever the shape.
//  - Rows: activation rows of independent sequences decoded together (Forward::run_batch): each
//    row summed as the reference sums a product of that row alone, one vec_dot per output.
// The quantized types give the same result on every path.
enum class Path { Gemm, Strided, Experts, Rows };

// Whether llama.cpp would run a product of this type and shape on `n_rows` activation rows
// through tinyBLAS.
bool takes_gemm_order(quant::Type type, int64_t n_in, int64_t n_out, int64_t n_rows,
                      Path path = Path::Gemm);

// Whether Strata can multiply weights of `type`: a dot product and a partner-format converter
// exist. Callers check this once per tensor when a model is loaded; matmul() assumes it.
bool can_multiply(quant::Type type);

// y[t * y_stride + r] = row r of w · activation row t, for t < a.n_rows(), r < w.n_out.
// `a` must be in w's partner format with n_in = w.n_in. Weight rows are split in chunks over the
// pass's team (simd/parallel.h).
void matmul(const Matrix& w, const Activations& a, float* y, int64_t y_stride,
            Path path = Path::Gemm);

// The same for weight rows [r0, r1) only, on the calling thread: a task's share of a product,
// for callers that put several products into one job (the experts of a layer). The weight type's
// tile kernel takes it when it has one and llama.cpp's float order is not asked for; otherwise
// one dot product per (weight row, activation row).
void matmul_rows(const Matrix& w, int64_t r0, int64_t r1, const Activations& a, float* y,
                 int64_t y_stride, Path path = Path::Gemm);

// One product of a batch (matmul_batch).
struct Product {
    const Matrix* w = nullptr;
    const Activations* a = nullptr;  // in w's partner format
    float* y = nullptr;              // (a->n_rows(), y_stride)
    int64_t y_stride = 0;
    Path path = Path::Gemm;
};

// Several independent products as one job of the pass's team (chunks of every product's rows),
// e.g. Q, K and V of one input: one barrier instead of one per product. Results equal matmul's.
void matmul_batch(std::span<const Product> products);

// Rows per task when a product of n_out rows is split for `threads` threads: a few tasks per
// thread so that none idles at the tail, in multiples of 16 rows (whole tiles).
int64_t row_chunk(int64_t n_out, int threads);

// The same, converting the float rows x (row t at x + t * x_stride) first; `scratch` keeps the
// converted rows between calls to avoid reallocating.
void matmul(const Matrix& w, const float* x, int64_t x_stride, int64_t n_rows, float* y,
            int64_t y_stride, Activations& scratch, Path path = Path::Gemm);

}  // namespace strata::simd
