// Debugging taps: the named intermediates of a forward pass written to files, to compare with
// llama.cpp tensor by tensor when the logits disagree (dump the reference's with its eval
// callback, llama_context_params::cb_eval). Names follow the reference's graph: "attn_norm-3" is
// layer 3's normalised block input; "Qcur@ROPE-3" the reference's tensor "Qcur-3" as its ROPE
// op leaves it. Layouts are the reference's with ne0 fastest (row-major (tokens, width) here).
//
// Off unless STRATA_TAP_DIR names a directory; then each call writes <dir>/<pass>_<name>.bin
// (raw float32), pass counting forward passes. Process-wide state: for one session at a time.
#pragma once

#include <cstdint>

namespace strata::arch {

bool tap_enabled();
// Starts the next forward pass (file name prefix).
void tap_next_pass();
// The layer that taps with layer == kTapCurrent are named after.
constexpr int64_t kTapCurrent = -2;
void tap_set_layer(int64_t layer);
// Writes n floats under `name` (with "-<layer>" appended when layer ≥ 0).
void tap(const char* name, int64_t layer, const float* data, int64_t n);

}  // namespace strata::arch
