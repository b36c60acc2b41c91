// Registration of the AVX-512 (F, BW, VL, DQ, VNNI, BF16) kernels into the dispatch tables.
// Compiled with this folder's ISA flags and called by dispatch::build_table only on CPUs (and OSes)
// that support them. Every kernel listed here is compared with the scalar reference of simd/ref
// (within float rounding) and with the exact scalar twin of its order in simd/float_order by
// tests/quant_float_dot_test.cpp.
#include "simd/avx512/kernels.h"
#include "simd/dispatch.h"

namespace strata::dispatch::avx512 {

void register_kernels(KernelTable& table) {
    using quant::Type;
    table.set_vec_dot(Type::F32, Isa::avx512, quant::avx512::vec_dot_f32);
    table.set_gemm_dot(Type::F32, Isa::avx512, quant::avx512::gemm_dot_f32);
    table.set_vec_dot(Type::F16, Isa::avx512, quant::avx512::vec_dot_f16);
    table.set_gemm_dot(Type::F16, Isa::avx512, quant::avx512::gemm_dot_f16);
    table.set_vec_dot(Type::BF16, Isa::avx512, quant::avx512::vec_dot_bf16);
    table.set_gemm_dot(Type::BF16, Isa::avx512, quant::avx512::gemm_dot_bf16);
}

}  // namespace strata::dispatch::avx512
