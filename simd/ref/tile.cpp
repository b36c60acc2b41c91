// The scalar twin of the tile seam (dispatch::TileFn): one reference dot product per output.
#include "simd/ref/ref.h"

namespace strata::quant::ref {

void tile(float (*dot)(int64_t, const void*, const void*), int64_t n, const void* w,
          size_t w_stride, int64_t n_w, const void* a, size_t a_stride, int64_t n_a, float* y,
          int64_t y_stride) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(a);
    for (int64_t t = 0; t < n_a; ++t)
        for (int64_t r = 0; r < n_w; ++r)
            y[t * y_stride + r] = dot(n, wb + static_cast<size_t>(r) * w_stride,
                                      ab + static_cast<size_t>(t) * a_stride);
}

}  // namespace strata::quant::ref
