#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <vector>

#include "cuda/kernels.h"

namespace strata::cuda {
namespace {

// ggml's type ids.
enum : uint32_t {
    kF32 = 0,
    kF16 = 1,
    kQ4_0 = 2,
    kQ5_0 = 6,
    kQ8_0 = 8,
    kQ4_K = 12,
    kQ5_K = 13,
    kQ6_K = 14,
    kBF16 = 30,
};

constexpr int kQK = 256;  // K-quant super-block
constexpr int kWarp = 32;

// Blocks are packed without padding (a Q6_K block is 210 bytes), so multi-byte fields are read
// byte by byte.
__device__ inline uint32_t u16_at(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8);
}
__device__ inline float f16_at(const uint8_t* p) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(u16_at(p))));
}
__device__ inline float bf16_at(const uint8_t* p) {
    return __uint_as_float(u16_at(p) << 16);
}
__device__ inline float f32_at(const uint8_t* p) {
    return __uint_as_float(u16_at(p) | (u16_at(p + 2) << 16));
}
__device__ inline int i16_at(const uint8_t* p) {
    return static_cast<int16_t>(static_cast<uint16_t>(u16_at(p)));
}

// Q8_0 block (34 bytes): d (f16), 32 int8. Q8_K block (292 bytes): d (f32), 256 int8, 16 int16
// group sums.
struct Q8K {
    const uint8_t* b;
    __device__ float d() const { return f32_at(b); }
    __device__ int q(int e) const { return static_cast<int8_t>(b[4 + e]); }
    __device__ int bsum(int g) const { return i16_at(b + 260 + 2 * g); }
};

// One weight block's contribution, as simd/ref computes it. `w` and `a` point at block i.
template <uint32_t T>
struct Block;

template <>
struct Block<kQ8_0> {
    static constexpr int kElems = 32, kBytes = 34, kActBytes = 34;
    __device__ static float dot(const uint8_t* w, const uint8_t* a) {
        int isum = 0;
        for (int j = 0; j < 32; ++j)
            isum += static_cast<int8_t>(w[2 + j]) * static_cast<int8_t>(a[2 + j]);
        return (f16_at(w) * f16_at(a)) * static_cast<float>(isum);
    }
};

template <>
struct Block<kQ4_0> {
    static constexpr int kElems = 32, kBytes = 18, kActBytes = 34;
    __device__ static float dot(const uint8_t* w, const uint8_t* a) {
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += ((w[2 + j] & 0xF) - 8) * static_cast<int8_t>(a[2 + j]);
            isum += ((w[2 + j] >> 4) - 8) * static_cast<int8_t>(a[2 + j + 16]);
        }
        return (f16_at(w) * f16_at(a)) * static_cast<float>(isum);
    }
};

template <>
struct Block<kQ5_0> {
    static constexpr int kElems = 32, kBytes = 22, kActBytes = 34;
    __device__ static float dot(const uint8_t* w, const uint8_t* a) {
        const uint32_t qh = u16_at(w + 2) | (u16_at(w + 4) << 16);
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = static_cast<int>((w[6 + j] & 0xFu) | (((qh >> j) & 1u) << 4)) - 16;
            const int hi = static_cast<int>((w[6 + j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
            isum += lo * static_cast<int8_t>(a[2 + j]) + hi * static_cast<int8_t>(a[2 + j + 16]);
        }
        return (f16_at(w) * f16_at(a)) * static_cast<float>(isum);
    }
};

// Q4_K / Q5_K scale and min of sub-block j (6 bits each, packed in 12 bytes).
__device__ inline void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Q4_K (144 bytes: d, dmin, scales[12], qs[128]) and Q5_K (176: d, dmin, scales[12], qh[32],
// qs[128]): element e = 64c + 32s + l is nibble s of qs[32c + l], fifth bit 2c + s of qh[l].
template <bool kFifth>
struct BlockK4 {
    static constexpr int kElems = kQK, kBytes = kFifth ? 176 : 144, kActBytes = 292;
    __device__ static float dot(const uint8_t* w, const uint8_t* a) {
        const uint8_t* scales = w + 4;
        const uint8_t* qh = w + 16;
        const uint8_t* qs = w + (kFifth ? 48 : 16);
        const Q8K y{a};
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; ++j) {
            int sc = 0, m = 0;
            scale_min_k4(j, scales, &sc, &m);
            const int c = j / 2, s = j % 2;
            int sub = 0;
            for (int l = 0; l < 32; ++l) {
                int level = (qs[32 * c + l] >> (4 * s)) & 0xF;
                if (kFifth) level |= ((qh[l] >> (2 * c + s)) & 1) << 4;
                sub += level * y.q(32 * j + l);
            }
            isum += sc * sub;
            msum += m * (y.bsum(2 * j) + y.bsum(2 * j + 1));
        }
        const float d = f16_at(w) * y.d();
        const float dmin = f16_at(w + 2) * y.d();
        return d * static_cast<float>(isum) - dmin * static_cast<float>(msum);
    }
};
template <>
struct Block<kQ4_K> : BlockK4<false> {};
template <>
struct Block<kQ5_K> : BlockK4<true> {};

// Q6_K (210 bytes: ql[128], qh[64], scales[16] int8, d): element e = 128h + 32p + l has the
// low nibble of ql[64h + l + 32(p & 1)] (p < 2: low, else high) and bits 2p.. of qh[32h + l],
// minus 32; sixteen sub-blocks of 16.
template <>
struct Block<kQ6_K> {
    static constexpr int kElems = kQK, kBytes = 210, kActBytes = 292;
    __device__ static float dot(const uint8_t* w, const uint8_t* a) {
        const Q8K y{a};
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            int sub = 0;
            for (int k = 0; k < 16; ++k) {
                const int e = 16 * j + k;
                const int h = e / 128, p = (e / 32) % 4, l = e % 32;
                const uint8_t low_byte = w[64 * h + l + 32 * (p & 1)];
                const int low = p < 2 ? (low_byte & 0xF) : (low_byte >> 4);
                const int high = (w[128 + 32 * h + l] >> (2 * p)) & 3;
                sub += ((low | (high << 4)) - 32) * y.q(e);
            }
            isum += static_cast<int8_t>(w[192 + j]) * sub;
        }
        return (f16_at(w + 208) * y.d()) * static_cast<float>(isum);
    }
};

__device__ inline float warp_sum(float v) {
    for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// One warp per (weight row, activation row): lanes take blocks in turn.
template <uint32_t T>
__global__ void quant_kernel(const uint8_t* w, size_t row_stride, int nb, const uint8_t* act,
                             size_t act_stride, float* y, int n_out) {
    const int r = blockIdx.x, t = blockIdx.y, lane = threadIdx.x;
    const uint8_t* wr = w + static_cast<size_t>(r) * row_stride;
    const uint8_t* at = act + static_cast<size_t>(t) * act_stride;
    float s = 0.0f;
    for (int i = lane; i < nb; i += kWarp)
        s += Block<T>::dot(wr + static_cast<size_t>(i) * Block<T>::kBytes,
                           at + static_cast<size_t>(i) * Block<T>::kActBytes);
    s = warp_sum(s);
    if (lane == 0) y[static_cast<size_t>(t) * n_out + r] = s;
}

// Float weights times float rows of the same format (F32 × F32, F16 × F16, BF16 × BF16).
template <uint32_t T>
__device__ inline float element(const uint8_t* p, int e) {
    if (T == kF32) return f32_at(p + 4 * e);
    if (T == kF16) return f16_at(p + 2 * e);
    return bf16_at(p + 2 * e);
}
template <uint32_t T>
__global__ void float_kernel(const uint8_t* w, size_t row_stride, int n_in, const uint8_t* act,
                             size_t act_stride, float* y, int n_out) {
    const int r = blockIdx.x, t = blockIdx.y, lane = threadIdx.x;
    const uint8_t* wr = w + static_cast<size_t>(r) * row_stride;
    const uint8_t* at = act + static_cast<size_t>(t) * act_stride;
    float s = 0.0f;
    for (int e = lane; e < n_in; e += kWarp) s = fmaf(element<T>(wr, e), element<T>(at, e), s);
    s = warp_sum(s);
    if (lane == 0) y[static_cast<size_t>(t) * n_out + r] = s;
}

bool check(cudaError_t err, std::string* why) {
    if (err == cudaSuccess) return true;
    if (why) *why = cudaGetErrorString(err);
    return false;
}

// Device scratch for activations and results, grown on demand, one per host thread.
struct Scratch {
    void* act = nullptr;
    size_t act_bytes = 0;
    float* y = nullptr;
    size_t y_bytes = 0;
    ~Scratch() {
        cudaFree(act);
        cudaFree(y);
    }
    bool grow(void** p, size_t* have, size_t need, std::string* why) {
        if (*have >= need) return true;
        cudaFree(*p);
        *p = nullptr;
        *have = 0;
        if (!check(cudaMalloc(p, need), why)) return false;
        *have = need;
        return true;
    }
};
thread_local Scratch scratch;

template <uint32_t T>
void launch(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t n_out, const uint8_t* act,
            size_t act_stride, int64_t n_rows, float* y) {
    const dim3 grid(static_cast<unsigned>(n_out), static_cast<unsigned>(n_rows));
    if constexpr (T == kF32 || T == kF16 || T == kBF16) {
        float_kernel<T><<<grid, kWarp>>>(w, row_stride, static_cast<int>(n_in), act, act_stride, y,
                                         static_cast<int>(n_out));
    } else {
        quant_kernel<T><<<grid, kWarp>>>(w, row_stride, static_cast<int>(n_in / Block<T>::kElems),
                                         act, act_stride, y, static_cast<int>(n_out));
    }
}

}  // namespace

bool kernel_for(uint32_t t) {
    switch (t) {
        case kF32:
        case kF16:
        case kBF16:
        case kQ4_0:
        case kQ5_0:
        case kQ8_0:
        case kQ4_K:
        case kQ5_K:
        case kQ6_K:
            return true;
        default:
            return false;
    }
}

void* device_alloc(size_t bytes, std::string* why) {
    void* p = nullptr;
    if (!check(cudaMalloc(&p, bytes), why)) return nullptr;
    return p;
}

void device_free(void* p) {
    cudaFree(p);
}

bool upload(void* dst, const void* src, size_t bytes, std::string* why) {
    return check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), why);
}

bool download(void* dst, const void* src, size_t bytes, std::string* why) {
    return check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), why);
}

bool matmul(uint32_t type, const void* w, size_t row_stride, int64_t n_in, int64_t n_out,
            const void* act, size_t act_stride, int64_t n_rows, float* y, int64_t y_stride,
            std::string* why) {
    if (!kernel_for(type)) {
        if (why) *why = "no CUDA kernel for this weight type";
        return false;
    }
    if (n_out <= 0 || n_rows <= 0) return true;
    if (n_rows > 65535) {
        if (why) *why = "more than 65535 activation rows in one product";
        return false;
    }
    const size_t act_bytes = act_stride * static_cast<size_t>(n_rows);
    const size_t y_bytes = sizeof(float) * static_cast<size_t>(n_out * n_rows);
    if (!scratch.grow(&scratch.act, &scratch.act_bytes, act_bytes, why) ||
        !scratch.grow(reinterpret_cast<void**>(&scratch.y), &scratch.y_bytes, y_bytes, why))
        return false;
    if (!upload(scratch.act, act, act_bytes, why)) return false;
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* ab = static_cast<const uint8_t*>(scratch.act);
    switch (type) {
        case kF32:
            launch<kF32>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        case kF16:
            launch<kF16>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        case kBF16:
            launch<kBF16>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        case kQ4_0:
            launch<kQ4_0>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        case kQ5_0:
            launch<kQ5_0>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        case kQ8_0:
            launch<kQ8_0>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        case kQ4_K:
            launch<kQ4_K>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        case kQ5_K:
            launch<kQ5_K>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        case kQ6_K:
            launch<kQ6_K>(wb, row_stride, n_in, n_out, ab, act_stride, n_rows, scratch.y);
            break;
        default:
            break;
    }
    if (!check(cudaGetLastError(), why)) return false;
    // Rows of n_out results to rows y_stride apart.
    return check(cudaMemcpy2D(y, sizeof(float) * static_cast<size_t>(y_stride), scratch.y,
                              sizeof(float) * static_cast<size_t>(n_out),
                              sizeof(float) * static_cast<size_t>(n_out),
                              static_cast<size_t>(n_rows), cudaMemcpyDeviceToHost),
                 why);
}

}  // namespace strata::cuda
