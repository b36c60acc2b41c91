// GGUF metadata of synthetic models: the keys, value types and key order the reference
// converter writes for each family, then what llama-quantize changes when the file is quantized.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/gguf.h"
#include "synth/spec.h"

namespace strata::synth {

// "1.0M", "520K", "671B": gguf-py's rounded parameter count, used as general.size_label.
std::string size_label(int64_t n_params);

// Every key of the spec's model, in converter order. n_params feeds general.size_label.
void write_metadata(gguf::Writer& out, const Spec& spec, int64_t n_params);

}  // namespace strata::synth
