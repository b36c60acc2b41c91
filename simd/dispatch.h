// Run-time kernel selection: CPU features detected once, and per-type function tables that start
// as the scalar references of simd/ref and are upgraded by the ISA kernels the CPU can run.
//
// Callers never name an ISA: they ask `dispatch::kernels()[type].vec_dot`. ISA kernels live in
// simd/avx2/, simd/avx512/, simd/avx512bf16/ and simd/amx/, each file compiled with its own
// flags; each folder defines one register_kernels(KernelTable&) that build_table() calls only
// when the CPU and the OS support that ISA, so no instruction of it runs anywhere else.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "simd/quant.h"

namespace strata::dispatch {

// What this process may use: the CPU reports it (cpuid) AND the OS saves its register state
// (XGETBV for AVX / AVX-512; on Linux, arch_prctl permission for AMX tile data).
struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512dq = false;
    bool avx512vnni = false;
    bool avx512bf16 = false;
    bool amx_tile = false;
    bool amx_int8 = false;
    bool amx_bf16 = false;
    // Features the CPU has that the OS did not enable, e.g. "avx512 (XCR0)", for `strata info`.
    std::string os_disabled;

    // The instruction sets each simd/<isa>/ folder is compiled for (see CMakeLists.txt).
    bool avx2_set() const { return avx2 && fma && f16c; }
    // Skylake-X lacks VNNI and runs the avx2 level; Cascade Lake and Ice Lake run this one
    // without BF16 (simd/avx512bf16 adds those products where the CPU has them).
    bool avx512_set() const {
        return avx2_set() && avx512f && avx512bw && avx512vl && avx512dq && avx512vnni;
    }
    bool avx512bf16_set() const { return avx512_set() && avx512bf16; }
    bool amx_set() const { return avx512bf16_set() && amx_tile && amx_int8 && amx_bf16; }
};

// This machine's features, detected on first use (thread-safe).
const CpuFeatures& features();
// Detects again; features() caches the first result.
CpuFeatures detect_features();
// "avx2 fma f16c avx512f … amx-int8", "none" when empty, plus "; not enabled by the OS: …".
std::string to_string(const CpuFeatures& f);

enum class Isa : uint8_t { scalar, avx2, avx512, amx };
std::string_view isa_name(Isa isa);

// A tile product over n elements: for r < n_w weight rows (row r at w + r * w_stride bytes) and
// t < n_a activation rows in the partner format (row t at a + t * a_stride bytes),
//   y[t * y_stride + r] = dot(weight row r, activation row t).
// A kernel unpacks each weight block once and reuses it for every activation row of the tile,
// so a batch of tokens reads the weights once. Kernels never throw and take any n_w, n_a >= 1.
using TileFn = void (*)(int64_t n, const void* w, size_t w_stride, int64_t n_w, const void* a,
                        size_t a_stride, int64_t n_a, float* y, int64_t y_stride);

// Sixteen contiguous rows of nb blocks each (rows) regrouped into the interleaved layout of
// simd/repack.h (group, the same number of bytes). False, with nothing written, for shapes the
// kernel does not take; the caller then uses the scalar regrouping.
using InterleaveFn = bool (*)(const uint8_t* rows, uint8_t* group, int64_t nb);

// The kernels of one type, and where each came from.
struct TypeKernels {
    quant::VecDotFn vec_dot = nullptr;
    Isa vec_dot_isa = Isa::scalar;
    // The same product in the order of llama.cpp's matrix-matrix path (llamafile's tinyBLAS),
    // which it takes for batches of contiguous activation rows of the float types (see
    // simd/matmul.h for when): their simd/ref gemm_dot to start with; for the other types
    // vec_dot, which that path matches.
    quant::VecDotFn gemm_dot = nullptr;
    Isa gemm_dot_isa = Isa::scalar;
    // Tile product (see TileFn); null where no ISA kernel registered one, in which case callers
    // loop over vec_dot. Its sums may be ordered unlike llama.cpp's (within the golden bounds for
    // quantized types); STRATA_ISA=avx2 leaves only kernels in llama.cpp's order (the AVX2
    // tiles of Q4_K, Q5_K and Q6_K are its vec_dot row by row). The AVX-512 tiles of Q2_K,
    // Q4_K, Q5_K, Q6_K, Q8_0 and Q4_0 do keep llama.cpp's AVX2 order (bit for bit,
    // tests/quant_tile_test.cpp); Q3_K's does not.
    TileFn tile = nullptr;
    Isa tile_isa = Isa::scalar;
    // Tile product over weights interleaved sixteen rows at a time (simd/repack.h): n_w is a
    // multiple of 16 and w_stride is not used. Null for types and ISAs without one; then
    // matrices of the type are never interleaved.
    TileFn tile_x16 = nullptr;
    Isa tile_x16_isa = Isa::scalar;
    // Regrouping into that layout, byte for byte the scalar one (simd/repack.cpp); null where
    // only the scalar one exists.
    InterleaveFn interleave_x16 = nullptr;
    Isa interleave_x16_isa = Isa::scalar;
    // Partner formats only (Q8_0, Q8_1, Q8_K, and the float types).
    quant::QuantizeFn quantize_activation = nullptr;
    Isa quantize_activation_isa = Isa::scalar;
};

class KernelTable {
  public:
    // Every type starts with its scalar references from the traits table.
    KernelTable();

    const TypeKernels& operator[](quant::Type type) const;

    // Registration point for ISA kernels. A type with no scalar reference cannot be given a
    // fast kernel: there would be nothing to test it against (ignored). set_vec_dot also sets
    // gemm_dot unless set_gemm_dot gave the type one of its own.
    void set_vec_dot(quant::Type type, Isa isa, quant::VecDotFn fn);
    void set_gemm_dot(quant::Type type, Isa isa, quant::VecDotFn fn);
    void set_quantize_activation(quant::Type type, Isa isa, quant::QuantizeFn fn);
    void set_tile(quant::Type type, Isa isa, TileFn fn);
    void set_tile_x16(quant::Type type, Isa isa, TileFn fn);
    void set_interleave_x16(quant::Type type, Isa isa, InterleaveFn fn);

  private:
    std::array<TypeKernels, quant::kTypeIdLimit> kernels_{};  // (type id)
    // Types given a GEMM-order product of their own; the others' gemm_dot follows vec_dot.
    std::array<bool, quant::kTypeIdLimit> own_gemm_dot_{};  // (type id)
};

// The table for a CPU with `f`: scalar references, then avx2, avx512 and amx kernels in that
// order (later ones replace earlier ones), each only when `f` supports it and it is not above
// `max_isa`. Pure: tests build tables for any feature set.
KernelTable build_table(const CpuFeatures& f, Isa max_isa = Isa::amx);

// The table of this machine, built once. STRATA_ISA=scalar|avx2|avx512|amx in the environment
// caps it (to compare against the references or to rule a kernel out).
const KernelTable& kernels();

// Registration hooks, one per ISA folder, compiled with that ISA's flags.
namespace avx2 {
void register_kernels(KernelTable& table);
}
namespace avx512 {
void register_kernels(KernelTable& table);
}
namespace avx512bf16 {  // BF16 products at the avx512 level, where the CPU has AVX512_BF16
void register_kernels(KernelTable& table);
}
namespace amx {
void register_kernels(KernelTable& table);
}

}  // namespace strata::dispatch
