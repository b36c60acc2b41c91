// The families' chat templates, as their public tokenizer_config.json files carry them (the
// same strings the golden models hold): DeepSeek-R1, Llama 3 and ChatML (Qwen).
#pragma once

#include <string_view>

#include "runtime/model.h"

namespace strata::synth {

std::string_view chat_template(Arch arch);

}  // namespace strata::synth
