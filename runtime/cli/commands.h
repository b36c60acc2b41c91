// The `strata` subcommands. Each file in runtime/cli/ defines one add_* function that registers
// its subcommand, options and callback on the application; main.cpp calls them all.
#pragma once

#include <CLI/CLI.hpp>

namespace strata::cli {

void add_inspect(CLI::App& app);
void add_synth(CLI::App& app);
void add_eval(CLI::App& app);
void add_run(CLI::App& app);
void add_bench(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_info(CLI::App& app);
void add_tune(CLI::App& app);
void add_serve(CLI::App& app);
void add_plan(CLI::App& app);

}  // namespace strata::cli
