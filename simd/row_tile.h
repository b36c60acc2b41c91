// The driver of the tile kernels built from a row kernel, for every ISA folder: a Kernel
// provides
//   template <int NA> static void row(int64_t n_blocks, const uint8_t* w, const uint8_t* a,
//                                     size_t a_stride, float* y, int64_t y_stride);
// (one weight row against NA activation rows, y[t * y_stride] for t < NA), and run_row_tile
// runs it for every weight row and every group of up to kMaxRows activation rows. Weight rows
// outermost: a row is unpacked once per group and stays in L1 while the groups after the first
// reuse it.
//
// No intrinsics here. Each ISA folder instantiates it with kernels of internal linkage (in an
// anonymous namespace), so no instantiation is shared between files compiled with different
// ISA flags.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::simd {

// Kernel::row<na>(args...) for a run-time na in 1..NA.
template <typename Kernel, int NA, typename... Args>
inline void row_upto(int64_t na, Args... args) {
    if constexpr (NA >= 1) {
        if (na == NA) {
            Kernel::template row<NA>(args...);
        } else {
            row_upto<Kernel, NA - 1>(na, args...);
        }
    }
}

template <typename Kernel, int kMaxRows>
void run_row_tile(int64_t n_blocks, const uint8_t* w, size_t w_stride, int64_t n_w,
                  const uint8_t* a, size_t a_stride, int64_t n_a, float* y, int64_t y_stride) {
    for (int64_t r = 0; r < n_w; ++r) {
        const uint8_t* wr = w + static_cast<size_t>(r) * w_stride;
        int64_t t = 0;
        for (; t + kMaxRows <= n_a; t += kMaxRows)
            Kernel::template row<kMaxRows>(n_blocks, wr, a + static_cast<size_t>(t) * a_stride,
                                           a_stride, y + t * y_stride + r, y_stride);
        if (t < n_a)
            row_upto<Kernel, kMaxRows - 1>(n_a - t, n_blocks, wr,
                                           a + static_cast<size_t>(t) * a_stride, a_stride,
                                           y + t * y_stride + r, y_stride);
    }
}

}  // namespace strata::simd
