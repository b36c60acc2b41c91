// Helpers shared by the tests: where the golden set is, scratch directories, running the CLI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace strata::test {

// ../shared/golden (or $STRATA_GOLDEN_DIR); empty when it is not there.
std::filesystem::path golden_dir();

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

struct CommandResult {
    int status = -1;  // exit status, or -1 when the command did not exit normally
    std::string out;  // stdout
    std::string err;  // stderr
};
// Runs `build/strata ARGS` (ARGS shell-quoted by the caller) and captures its output.
CommandResult run_strata(const std::string& args);

std::string read_file(const std::filesystem::path& path);

// "1,2,3": token ids as --tokens takes them.
std::string token_list(const std::vector<int32_t>& ids);

// n token ids drawn uniformly below `vocab` from `seed`.
std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed);

}  // namespace strata::test

// Skips the current test with a message when the golden set is missing.
#define STRATA_REQUIRE_GOLDEN()                                                             \
    do {                                                                                    \
        if (::strata::test::golden_dir().empty())                                           \
            GTEST_SKIP() << "golden set not found (../shared/golden or STRATA_GOLDEN_DIR)"; \
    } while (0)
