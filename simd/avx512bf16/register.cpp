// Registration of the AVX-512 BF16 kernels, at the avx512 level, into the dispatch tables.
// Compiled with this folder's ISA flags and called by dispatch::build_table only on CPUs (and
// OSes) with AVX512_BF16 besides the AVX-512 level's set. tests/float_order_test.cpp compares
// both with their exact scalar twins (simd/float_order).
#include "simd/avx512bf16/kernels.h"
#include "simd/dispatch.h"

namespace strata::dispatch::avx512bf16 {

void register_kernels(KernelTable& table) {
    using quant::Type;
    table.set_vec_dot(Type::BF16, Isa::avx512, quant::avx512bf16::vec_dot_bf16);
    table.set_gemm_dot(Type::BF16, Isa::avx512, quant::avx512bf16::gemm_dot_bf16);
}

}  // namespace strata::dispatch::avx512bf16
