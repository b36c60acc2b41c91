#include "runtime/cli/default_model.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "runtime/error.h"

#ifndef STRATA_SOURCE_DIR
#define STRATA_SOURCE_DIR "."
#endif

namespace strata::cli {
namespace {

constexpr const char* kFile = "strata-tiny-r1.gguf";

std::vector<std::filesystem::path> candidates() {
    std::vector<std::filesystem::path> out;
    const auto add = [&out](const std::filesystem::path& p) {
        const std::filesystem::path n = p.lexically_normal();
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    };
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        add(exe.parent_path().parent_path() / "models" / kFile);
        add(exe.parent_path() / "models" / kFile);
    }
    add(std::filesystem::path(STRATA_SOURCE_DIR) / "models" / kFile);
    return out;
}

}  // namespace

std::string default_model_path() {
    if (const char* env = std::getenv("STRATA_MODEL"); env && *env) return env;
    std::error_code ec;
    std::string looked;
    for (const std::filesystem::path& p : candidates()) {
        if (std::filesystem::is_regular_file(p, ec)) return p.string();
        looked += (looked.empty() ? "" : " or ") + p.string();
    }
    throw UsageError("no -m given and the default model " + std::string(kFile) + " is not in " +
                     looked + ": pass -m MODEL");
}

void add_model_option(CLI::App* cmd, std::string& model, const std::string& what) {
    cmd->add_option(
        "-m,--model", model,
        what + " (default: $STRATA_MODEL, else the shipped strata-tiny-r1, models/" + kFile + ")");
}

void use_default_model(std::string& model) {
    if (!model.empty()) return;
    model = default_model_path();
    std::fprintf(stderr, "strata: no -m given: using %s\n", model.c_str());
}

}  // namespace strata::cli
