// Registration of the AVX2 + FMA + F16C kernels into the dispatch tables. Compiled with this
// folder's ISA flags and called by dispatch::build_table only on CPUs (and OSes) that support
// them. Every kernel listed here is compared with its scalar reference in simd/ref by
// tests/quant_vec_dot_test.cpp (exactly on exact-arithmetic rows, within float rounding on
// realistic ones, on ragged block counts).
#include "simd/avx2/kernels.h"
#include "simd/dispatch.h"

namespace strata::dispatch::avx2 {

void register_kernels(KernelTable& table) {
    using quant::Type;
    table.set_vec_dot(Type::Q4_0, Isa::avx2, quant::avx2::vec_dot_q4_0);
    table.set_vec_dot(Type::Q4_1, Isa::avx2, quant::avx2::vec_dot_q4_1);
    table.set_vec_dot(Type::Q5_0, Isa::avx2, quant::avx2::vec_dot_q5_0);
    table.set_vec_dot(Type::Q5_1, Isa::avx2, quant::avx2::vec_dot_q5_1);
    table.set_vec_dot(Type::Q8_0, Isa::avx2, quant::avx2::vec_dot_q8_0);
    table.set_vec_dot(Type::Q2_K, Isa::avx2, quant::avx2::vec_dot_q2_K);
    table.set_vec_dot(Type::Q3_K, Isa::avx2, quant::avx2::vec_dot_q3_K);
    table.set_vec_dot(Type::Q4_K, Isa::avx2, quant::avx2::vec_dot_q4_K);
    table.set_vec_dot(Type::Q5_K, Isa::avx2, quant::avx2::vec_dot_q5_K);
    table.set_vec_dot(Type::Q6_K, Isa::avx2, quant::avx2::vec_dot_q6_K);
    // vec_dot's floats bit for bit (tests/quant_tile_test.cpp), so the exact level keeps them.
    table.set_tile(Type::Q4_K, Isa::avx2, quant::avx2::tile_q4_K);
    table.set_tile(Type::Q5_K, Isa::avx2, quant::avx2::tile_q5_K);
    table.set_tile(Type::Q6_K, Isa::avx2, quant::avx2::tile_q6_K);
}

}  // namespace strata::dispatch::avx2
