// The shipped default model: strata-tiny-r1, a small trained DeepSeek-V3-architecture reasoner
// (models/strata-tiny-r1.gguf, made by scripts/train_tiny_reasoner.py). run, eval, bench,
// tokenize and serve use it when no -m is given.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace strata::cli {

// Where the default model is looked for, in order: $STRATA_MODEL; models/ beside the directory
// that holds the strata binary (build/strata → models/); models/ of the source tree it was built
// from.
std::string default_model_path();

// Adds -m/--model to `cmd`, its help naming the default.
void add_model_option(CLI::App* cmd, std::string& model,
                      const std::string& what = "GGUF model file");

// With `model` empty (no -m): sets it to default_model_path() and says so in one line on stderr;
// throws UsageError naming the places looked in when none holds the model.
void use_default_model(std::string& model);

}  // namespace strata::cli
