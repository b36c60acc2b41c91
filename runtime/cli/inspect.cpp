// strata inspect: placeholder listing; the full report lands with issue 2, deliver 5.
#include <fmt/format.h>

#include "runtime/cli/commands.h"
#include "runtime/gguf.h"

namespace strata::cli {

void add_inspect(CLI::App& app) {
    auto* cmd = app.add_subcommand("inspect", "Show a GGUF model's metadata and tensors");
    static std::string path;
    cmd->add_option("MODEL", path, "GGUF file (the first shard of a split model)")->required();
    cmd->callback([] {
        const gguf::File file = gguf::File::open(path);
        fmt::print("{}: GGUF v{}, {} keys, {} tensors\n", path, file.version(),
                   file.metadata().size(), file.tensors().size());
    });
}

}  // namespace strata::cli
