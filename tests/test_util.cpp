#include "tests/test_util.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace strata::test {

namespace fs = std::filesystem;

fs::path golden_dir() {
    if (const char* env = std::getenv("STRATA_GOLDEN_DIR")) return fs::exists(env) ? env : "";
    const fs::path p = STRATA_GOLDEN_DEFAULT;
    return fs::exists(p / "manifest.json") ? p : fs::path();
}

TempDir::TempDir() {
    std::random_device rd;
    for (;;) {
        path_ = fs::temp_directory_path() /
                ("strata-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        if (fs::create_directory(path_)) break;
    }
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

CommandResult run_strata(const std::string& args) {
    TempDir dir;
    const fs::path out = dir / "out", err = dir / "err";
    const std::string cmd = std::string(STRATA_BIN) + " " + args + " >" + out.string() + " 2>" +
                            err.string() + " </dev/null";
    const int raw = std::system(cmd.c_str());
    CommandResult r;
    r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

std::string token_list(const std::vector<int32_t>& ids) {
    return fmt::format("{}", fmt::join(ids, ","));
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
    return ids;
}

}  // namespace strata::test
