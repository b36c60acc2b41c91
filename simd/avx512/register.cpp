// Registration of the AVX-512 (F, BW, VL, DQ, VNNI) kernels into the dispatch tables.
// Compiled with this folder's ISA flags and called by dispatch::build_table only on CPUs (and OSes)
// that support them. Every kernel listed here is compared with the scalar reference of simd/ref:
// the float products (within float rounding, and with the exact scalar twin of their order in
// simd/float_order) by tests/float_order_test.cpp, the tiles by tests/quant_tile_test.cpp, the
// activation quantizers byte for byte by tests/quant_activation_test.cpp.
#include "simd/avx512/kernels.h"
#include "simd/dispatch.h"

namespace strata::dispatch::avx512 {

void register_kernels(KernelTable& table) {
    using quant::Type;
    table.set_vec_dot(Type::F32, Isa::avx512, quant::avx512::vec_dot_f32);
    table.set_gemm_dot(Type::F32, Isa::avx512, quant::avx512::gemm_dot_f32);
    table.set_vec_dot(Type::F16, Isa::avx512, quant::avx512::vec_dot_f16);
    table.set_gemm_dot(Type::F16, Isa::avx512, quant::avx512::gemm_dot_f16);

    // Tiles sum in another float order than llama.cpp: avx512 level only (STRATA_ISA=avx2 is
    // the bit-for-bit mode).
    table.set_tile(Type::Q4_0, Isa::avx512, quant::avx512::tile_q4_0);
    table.set_tile(Type::Q8_0, Isa::avx512, quant::avx512::tile_q8_0);
    table.set_tile(Type::Q5_0, Isa::avx512, quant::avx512::tile_q5_0);
    table.set_tile(Type::Q2_K, Isa::avx512, quant::avx512::tile_q2_K);
    table.set_tile(Type::Q3_K, Isa::avx512, quant::avx512::tile_q3_K);
    table.set_tile(Type::Q4_K, Isa::avx512, quant::avx512::tile_q4_K);
    table.set_tile(Type::Q5_K, Isa::avx512, quant::avx512::tile_q5_K);
    table.set_tile(Type::Q6_K, Isa::avx512, quant::avx512::tile_q6_K);
    // Over weights interleaved at load (simd/repack.h), in that layout's order.
    table.set_tile_x16(Type::Q4_K, Isa::avx512, quant::avx512::tile_q4_K_x16);
    table.set_tile_x16(Type::Q6_K, Isa::avx512, quant::avx512::tile_q6_K_x16);
    table.set_tile_x16(Type::Q8_0, Isa::avx512, quant::avx512::tile_q8_0_x16);
    table.set_tile_x16(Type::Q5_0, Isa::avx512, quant::avx512::tile_q5_0_x16);
    table.set_tile_x16(Type::Q4_0, Isa::avx512, quant::avx512::tile_q4_0_x16);
    // and the regrouping into that layout (byte for byte the scalar one, tests/repack_test.cpp).
    table.set_interleave_x16(Type::Q4_K, Isa::avx512, quant::avx512::interleave_q4_K_x16);
    table.set_interleave_x16(Type::Q6_K, Isa::avx512, quant::avx512::interleave_q6_K_x16);

    // Byte for byte the references.
    table.set_quantize_activation(Type::Q8_0, Isa::avx512, quant::avx512::quantize_activation_q8_0);
    table.set_quantize_activation(Type::Q8_1, Isa::avx512, quant::avx512::quantize_activation_q8_1);
    table.set_quantize_activation(Type::Q8_K, Isa::avx512, quant::avx512::quantize_activation_q8_K);
}

}  // namespace strata::dispatch::avx512
