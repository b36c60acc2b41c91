// Registration of the AVX2 + FMA + F16C kernels into the dispatch tables. Compiled with this
// folder's ISA flags and called by dispatch::build_table only on CPUs (and OSes) that support
// them. A kernel goes in with table.set_vec_dot(type, Isa::avx2, fn) once a test compares it
// with the scalar reference of simd/ref on random and ragged shapes.
#include "simd/dispatch.h"

namespace strata::dispatch::avx2 {

void register_kernels(KernelTable& table) {
    static_cast<void>(table);
}

}  // namespace strata::dispatch::avx2
