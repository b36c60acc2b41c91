// Random but valid quantized blocks, written directly: no float values are drawn and no quantizer
// runs, so a model of tens of GB is written at close to disk speed. The levels are bell-shaped
// (sums of uniform bit fields) and the scales are set so that the dequantized values have the
// standard deviation asked for and mean near zero, as the quantizer's output of N(0, σ²) weights
// has; the per-sub-block scales vary by ±25%, as fitted scales of random data do.
#pragma once

#include <cstdint>

#include "simd/quant.h"

namespace strata::synth {

// Whether random_blocks() can write `type` (the legacy and K-quant weight types except Q3_K).
bool has_random_blocks(quant::Type type);

// Writes n_blocks blocks of `type` to dst, drawn from the stream `seed`; dequantized values have
// standard deviation about `sigma` and mean about zero. The same seed gives the same bytes.
// `type` must satisfy has_random_blocks().
void random_blocks(quant::Type type, uint64_t seed, float sigma, uint8_t* dst, int64_t n_blocks);

}  // namespace strata::synth
