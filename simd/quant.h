// Quantization formats: the ggml type ids, the block layouts and one traits table.
//
// Every block is a plain struct whose size is static_assert'ed against the format; all row-size
// arithmetic goes through row_bytes(). The scalar functions in the traits table are the reference
// that every fast kernel is tested against; fast kernels live in simd/<isa>/ and are reached
// through simd/dispatch, never by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "simd/fp16.h"

namespace strata::quant {

// Type ids as GGUF stores them (ggml_type). Gaps are ids ggml has retired.
enum class Type : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
};

inline constexpr uint32_t kTypeIdLimit = 40;  // every known id is below this
inline constexpr int64_t QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
inline constexpr int64_t QK_K = 256;     // super-block of the K-quants
inline constexpr int K_SCALE_SIZE = 12;  // packed 6-bit scales and mins of Q4_K / Q5_K

// ---------------------------------------------------------------------------------------------
// Block layouts. `d` is the scale, `m`/`dmin` the minimum; f16 fields are stored as raw bits.

// Q4_0: 4.5 bits per weight. x = d * (q - 8), q in [0, 15]; element j in the low nibble of
// qs[j], element j + 16 in the high nibble.
struct block_q4_0 {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 18);

// Q4_1: 5 bits per weight. x = d * q + m.
struct block_q4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 20);

// Q5_0: 5.5 bits per weight. x = d * (q - 16); the fifth bit of element j is bit j of qh.
struct block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 22);

// Q5_1: 6 bits per weight. x = d * q + m.
struct block_q5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 24);

// Q8_0: 8.5 bits per weight. x = d * q.
struct block_q8_0 {
    uint16_t d;
    int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 34);

// Q8_1: activation partner of Q4_1 / Q5_1. s = d * sum(qs).
struct block_q8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[QK8_1];
};
static_assert(sizeof(block_q8_1) == 36);

// Q2_K: 2.625 bits per weight. 16 sub-blocks of 16; scales[i] = 4-bit scale | 4-bit min << 4;
// x = d * scale * q - dmin * min.
struct block_q2_K {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
static_assert(sizeof(block_q2_K) == 84);

// Q3_K: 3.4375 bits per weight. 16 sub-blocks of 16 with 6-bit signed scales; the high bit of
// each quant is in hmask; x = d * (scale - 32) * (q - 4 * !hbit).
struct block_q3_K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
};
static_assert(sizeof(block_q3_K) == 110);

// Q4_K: 4.5 bits per weight. 8 sub-blocks of 32 with 6-bit scales and mins packed in scales[12];
// x = d * scale * q - dmin * min.
struct block_q4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144);

// Q5_K: 5.5 bits per weight. As Q4_K with a fifth bit per weight in qh.
struct block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 176);

// Q6_K: 6.5625 bits per weight. 16 sub-blocks of 16 with int8 scales; x = d * scale * (q - 32),
// low 4 bits in ql, high 2 bits in qh.
struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210);

// Q8_K: activation partner of the K-quants. A float scale and the sums of each group of 16
// quants, which the K-quant dot products use to apply the mins.
struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == 292);

// ---------------------------------------------------------------------------------------------
// Traits. `n` is always a number of elements and a multiple of block_size.

using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
// Dot product of a weight row `w` with an activation row `a` in the partner format.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);

struct TypeTraits {
    std::string_view name;
    int64_t block_size = 0;    // elements per block; 0 = not a known id
    size_t block_bytes = 0;    // bytes per block
    bool supported = false;    // Strata can compute with it
    Type partner = Type::F32;  // activation format of vec_dot
    DequantizeFn dequantize = nullptr;
    QuantizeFn quantize = nullptr;
    VecDotFn vec_dot = nullptr;  // scalar reference
    // Partner formats only: how llama.cpp's CPU backend quantizes activations (differs from the
    // weight quantizer `quantize` in rounding for Q8_0 / Q8_1).
    QuantizeFn quantize_activation = nullptr;
};

// Traits of any id below kTypeIdLimit; unknown ids come back with block_size 0.
const TypeTraits& traits(Type type);
inline const TypeTraits& traits(uint32_t id) {
    return traits(static_cast<Type>(id));
}

// Whether `id` names a type that GGUF files may hold.
bool is_known(uint32_t id);
std::string_view type_name(Type type);
// "Q4_K" → Type::Q4_K (case-insensitive); nullopt when there is no such type.
std::optional<Type> type_from_name(std::string_view name);

// Bytes of a row of `n` elements; n must be a multiple of the block size (callers validate).
inline size_t row_bytes(Type type, int64_t n) {
    const TypeTraits& t = traits(type);
    return static_cast<size_t>(n / t.block_size) * t.block_bytes;
}

// Checked helpers that throw strata::Error naming `what` when the type cannot do the job.
void dequantize_row(Type type, const void* src, float* dst, int64_t n);
void quantize_row(Type type, const float* src, void* dst, int64_t n);

}  // namespace strata::quant
