// The GPU tier's products (CUDA): weight rows already in device memory times activation rows in
// the CPU's partner formats (simd/matmul.h: F32 rows for F32 weights, F16 / BF16 rows for half
// weights, Q8_0 blocks for Q4_0 / Q5_0 / Q8_0, Q8_K blocks for the K-quants), as the host device
// gets them. Each weight block's contribution is the scalar reference's (simd/ref: exact integer
// sums, then d·isum − dmin·msum in float); the blocks of a row are summed in another order (a
// warp's lanes, then a tree), so results differ from the CPU's by float rounding only.
//
// Built with nvcc as C++17; types are ggml's type ids (quant::Type's values). Every call is
// synchronous and returns false with *why set on a CUDA error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace strata::cuda {

// Whether the kernels multiply weights of this type.
bool kernel_for(uint32_t ggml_type);

void* device_alloc(size_t bytes, std::string* why);
void device_free(void* p);
bool upload(void* device_dst, const void* host_src, size_t bytes, std::string* why);
bool download(void* host_dst, const void* device_src, size_t bytes, std::string* why);

// y[t * y_stride + r] = row r of w · activation row t, for r < n_out and t < n_rows. Weight row
// r starts at w + r · row_stride (device memory); activation row t at act + t · act_stride (host
// memory, act_stride bytes each, copied over); y is host memory.
bool matmul(uint32_t ggml_type, const void* w, size_t row_stride, int64_t n_in, int64_t n_out,
            const void* act, size_t act_stride, int64_t n_rows, float* y, int64_t y_stride,
            std::string* why);

}  // namespace strata::cuda
