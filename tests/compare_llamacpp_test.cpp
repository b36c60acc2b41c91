// The llama.cpp comparison on synthesized models (scripts/compare-llamacpp.sh --quick: every
// architecture variant and weight type at least once) as a test. It needs a llama.cpp build, which
// is never a build dependency: the test runs when STRATA_LLAMA_CPP_DIR names one, or when
// scripts/peer/build-llama.sh has left one in its cache (STRATA_PEER_CACHE, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/strata/peer, its `build` link), and is skipped with a message
// otherwise. Strata runs in its exact mode (STRATA_ISA=avx2, llama.cpp's order of operations).
// Every case must stay within the golden README's bounds.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace strata {
namespace {

// s in single quotes for /bin/sh.
std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// A non-empty environment variable, or "".
std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? v : "";
}

// The llama.cpp build to compare with: STRATA_LLAMA_CPP_DIR, else build-llama.sh's cached one
// (where the script puts it), else "".
std::string llama_cpp_dir() {
    if (std::string dir = env("STRATA_LLAMA_CPP_DIR"); !dir.empty()) return dir;
    std::filesystem::path cache;
    if (std::string c = env("STRATA_PEER_CACHE"); !c.empty()) {
        cache = c;
    } else if (std::string x = env("XDG_CACHE_HOME"); !x.empty()) {
        cache = std::filesystem::path(x) / "strata" / "peer";
    } else if (std::string h = env("HOME"); !h.empty()) {
        cache = std::filesystem::path(h) / ".cache" / "strata" / "peer";
    } else {
        return "";
    }
    std::error_code ec;
    if (!std::filesystem::exists(cache / "build" / "CMakeCache.txt", ec)) return "";
    return (cache / "build").string();
}

TEST(CompareLlamaCpp, QuickMatrixWithinTheGoldenBounds) {
    const std::string dir = llama_cpp_dir();
    if (dir.empty()) {
        GTEST_SKIP() << "no llama.cpp build to compare with: run scripts/peer/build-llama.sh "
                        "(cached outside the clone) or set STRATA_LLAMA_CPP_DIR to a CMake build "
                        "directory of llama.cpp with shared libraries";
    }
    // --isa avx2: the exact mode (the script's default, said here so that the test keeps it).
    const std::string cmd = shell_quote(STRATA_SOURCE_DIR "/scripts/compare-llamacpp.sh") + " " +
                            shell_quote(dir) + " --quick --isa avx2 --strata " +
                            shell_quote(STRATA_BIN) + " 2>&1";
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
