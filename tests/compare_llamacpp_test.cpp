// The llama.cpp comparison on synthesized models (scripts/compare-llamacpp.sh --quick: every
// architecture variant and weight type at least once) as a test. It needs a llama.cpp build, which
// is never a dependency: the test runs when STRATA_LLAMA_CPP_DIR names one and is skipped with a
// message otherwise. Every case must stay within the golden README's bounds.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace strata {
namespace {

// s in single quotes for /bin/sh.
std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

TEST(CompareLlamaCpp, QuickMatrixWithinTheGoldenBounds) {
    const char* dir = std::getenv("STRATA_LLAMA_CPP_DIR");
    if (dir == nullptr || *dir == '\0') {
        GTEST_SKIP()
            << "STRATA_LLAMA_CPP_DIR is not set: no llama.cpp build to compare with (set it "
               "to a CMake build directory of llama.cpp with shared libraries to run "
               "scripts/compare-llamacpp.sh --quick here)";
    }
    const std::string cmd = shell_quote(STRATA_SOURCE_DIR "/scripts/compare-llamacpp.sh") + " " +
                            shell_quote(dir) + " --quick --strata " + shell_quote(STRATA_BIN) +
                            " 2>&1";
    std::FILE* pipe = popen(cmd.c_str(), "r");
    ASSERT_NE(pipe, nullptr) << cmd;
    std::string out;
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe)) {
        out += buf.data();
        std::fputs(buf.data(), stdout);  // the table, row by row as the cases finish
    }
    const int status = pclose(pipe);
    ASSERT_TRUE(WIFEXITED(status)) << out;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "cases outside the golden bounds (FAIL rows above)";
    EXPECT_NE(out.find(" 0 failed"), std::string::npos) << out;
}

}  // namespace
}  // namespace strata
