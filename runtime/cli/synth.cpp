// strata synth: placeholder until the synthesizer lands (issue 2, deliver 6).
#include "runtime/cli/commands.h"
#include "runtime/error.h"

namespace strata::cli {

void add_synth(CLI::App& app) {
    auto* cmd = app.add_subcommand("synth", "Write a synthetic model with random weights");
    cmd->callback([] { throw Error("synth is not implemented yet"); });
}

}  // namespace strata::cli
