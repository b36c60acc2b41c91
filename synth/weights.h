// Seeded random weights for synthetic models. Every row of every tensor has its own random
// stream, derived from the seed, the tensor's name and the row index, so a tensor's values do
// not depend on its type, its place in the file or the number of threads that draw it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "synth/layout.h"
#include "synth/spec.h"

namespace strata::synth {

// Llama 3's per-pair frequency divisors (rope_freqs.weight): 1 for high frequencies, `factor`
// for low ones, a smooth ramp between. n_rot / 2 values.
std::vector<float> llama3_rope_factors(const Llama3Rope& rope, int64_t n_rot, float freq_base);

// Throws strata::Error (from quant::quantize_row) when `type` cannot be written yet.
void require_quantizer(quant::Type type);

// Whether fill_tensor() writes the tensor as random blocks (spec.fill is Random, the tensor is a
// random matrix and its type has a block writer) rather than drawing and quantizing floats.
bool fills_random(const Spec& spec, const TensorPlan& t);

// Writes the tensor's values, converted to its type, into dst (exactly t.bytes bytes), or random
// blocks of the same magnitudes where fills_random(). Rows are made in parallel.
void fill_tensor(const Spec& spec, const TensorPlan& t, uint8_t* dst, size_t nbytes);

// The tensor's values as floats (before conversion to its type), for tests and tools.
std::vector<float> tensor_values(const Spec& spec, const TensorPlan& t);

}  // namespace strata::synth
