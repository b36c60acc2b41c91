// Registration of the AMX (tile, int8, bf16) with AVX-512 kernels into the dispatch tables.
// Compiled with this folder's ISA flags and called by dispatch::build_table only on CPUs (and OSes)
// that support them. A kernel goes in with table.set_vec_dot(type, Isa::amx, fn) once a test
// compares it with the scalar reference of simd/ref on random and ragged shapes.
#include "simd/dispatch.h"

namespace strata::dispatch::amx {

void register_kernels(KernelTable& table) {
    static_cast<void>(table);
}

}  // namespace strata::dispatch::amx
