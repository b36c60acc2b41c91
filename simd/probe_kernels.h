// The loops of simd/probe.cpp, one per ISA folder (compiled with that folder's flags; called only
// on CPUs that run them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::simd::probe {

// Reads `bytes` (a multiple of 256) with the widest loads; returns a sum so no load is dropped.
uint64_t read_avx512(const uint8_t* p, size_t bytes);
uint64_t read_avx2(const uint8_t* p, size_t bytes);

// `iters` iterations of independent int8 dot-product instructions in registers; returns the
// number of int8 operations done (a multiply and an add each count one).
double int8_loop_avx512(int64_t iters);
double int8_loop_avx2(int64_t iters);

}  // namespace strata::simd::probe
