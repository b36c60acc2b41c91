// Float arithmetic in the order llama.cpp's x86 CPU backend performs it.
//
// A quantized product rounds its activation rows to integers; an activation that differs from the
// reference's in the last bit can round the other way and move the logits by ~1e-2. Matching the
// reference's summation order (lanes, fused multiply-adds, reduction tree) and its vector exp
// makes the float inputs of those roundings identical, and the golden quantized cases agree bit
// for bit where the integer kernels do too. The orders are those of the AVX-512 build the golden
// logits were made with:
//  - _mm512_reduce_add_ps: lanes (i, i+8), then (i, i+4), then (0+2, 1+3), then the two halves;
//  - llamafile's tinyBLAS F32 GEMM (batches of contiguous activations; simd/matmul.h says when):
//    one 16-lane accumulator of fused multiply-adds, then the reduction;
//  - ggml_vec_dot_f32: four 16-lane accumulators over steps of 64, combined 0+2, 1+3, 0+1,
//    reduced, then the remaining products added one at a time: rounded before the add in groups
//    of 16 and then 8, fused for the last ones (fused_tail_start), as its compiler vectorised the
//    scalar remainder loop;
//  - ggml_v_expf: ARM's polynomial exp with fused multiply-adds and an exact power-of-two scale.
// Each function is exact scalar code; the compiler clones it for FMA / AVX-512 CPUs (same
// results, faster). They are the scalar twins that simd/avx512's float kernels are tested
// against bit for bit, and what attention uses directly.
#pragma once

#include <cstdint>

namespace strata::simd {

// Sum of 16 lanes in _mm512_reduce_add_ps order.
float reduce_16(const float* lanes);

// Σ x[i]·y[i] as tinyBLAS: lane l accumulates elements l, l+16, … with fused multiply-adds
// (missing elements of a last partial step count as zero), then reduce_16.
float dot_f32_gemm(const float* x, const float* y, int64_t n);

// out[r · 4 + c] = dot_f32_gemm(x[r], y[c], n) for r, c < 4, bit for bit: one pass over the n
// elements serves sixteen products (attention's weighted sums: four value rows against the
// probabilities of four queries).
void dot_f32_gemm_4x4(const float* const* x, const float* const* y, int64_t n, float* out);

// Where ggml_vec_dot_f32's remainder [start, end) switches to fused multiply-adds: after the
// groups of 16 and one group of 8 if at least 8 are left.
int64_t fused_tail_start(int64_t start, int64_t end);

// ggml_vec_dot_f32's remainder added to `sum`: terms [whole, n) of n_total (the rest are masked
// zeros), one at a time, rounded before the add up to fused_tail_start(whole, n_total), fused
// after it. The lane loops of every vec-order product end here.
float add_vec_remainder(const float* x, const float* y, int64_t whole, int64_t n, int64_t n_total,
                        float sum);

// Σ x[i]·y[i] as ggml_vec_dot_f32.
float dot_f32_vec(const float* x, const float* y, int64_t n);

// The first n of n_total terms of ggml_vec_dot_f32, the remaining terms being zero (masked
// attention positions): n_total decides which terms go through the lanes and which are added
// one at a time.
float dot_f32_vec_prefix(const float* x, const float* y, int64_t n, int64_t n_total);
// out[r · 4 + c] = dot_f32_vec_prefix(x[r], y[c], n, n_total) for r, c < 4, bit for bit, in four
// passes (one per accumulator of the products) that each share their loads among sixteen
// products (attention's decoding step: four key or value rows against four heads).
void dot_f32_vec_prefix_4x4(const float* const* x, const float* const* y, int64_t n,
                            int64_t n_total, float* out);

// Half-precision rows (raw bits), the two orders of each; the products of two halves are exact
// in float.
//  - ggml_vec_dot_f16: as dot_f32_vec on the widened values, except that the lanes' sum goes to
//    double and the remaining products (past the last step of 64) are added in double.
//  - tinyBLAS F16 (n a multiple of 16): as dot_f32_gemm on the widened values.
//  - ggml_vec_dot_bf16 (AVX512-BF16): two 16-lane accumulators over steps of 64, each step one
//    vdpbf16ps per accumulator (elements 0..31 and 32..63 of the step), the two lane sums added
//    in double, then the remaining products in double.
//  - tinyBLAS BF16 (n a multiple of 32): one 16-lane accumulator, one vdpbf16ps per 32 elements,
//    then reduce_16.
// vdpbf16ps adds to lane l the product of elements 2l+1, rounded, then that of 2l, rounded; the
// scalar twins compute exactly that for values whose products are normal floats (the instruction
// keeps smaller products unflushed, which float arithmetic cannot: below ~1e-38 they may differ).
float dot_f16_vec(const uint16_t* x, const uint16_t* y, int64_t n);
float dot_f16_gemm(const uint16_t* x, const uint16_t* y, int64_t n);
float dot_bf16_vec(const uint16_t* x, const uint16_t* y, int64_t n);
float dot_bf16_gemm(const uint16_t* x, const uint16_t* y, int64_t n);

// e^x as ggml_v_expf (AVX-512); 0 below about -104, +inf above about 88.4.
float exp_vec(float x);
// y[i] = exp_vec(x[i]) for i < n, vectorised (x == y allowed).
void exp_vec_n(const float* x, float* y, int64_t n);

}  // namespace strata::simd
