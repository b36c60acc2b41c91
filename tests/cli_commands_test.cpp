// `strata` with no command or an unknown one: the word is named and the commands listed.
#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace strata {
namespace {

TEST(CliCommands, UnknownCommandIsNamedWithTheList) {
    const auto r = test::run_strata("serv");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("unknown command 'serv'"), std::string::npos) << r.err;
    for (const char* name : {"run", "bench", "serve", "inspect"})
        EXPECT_NE(r.err.find(name), std::string::npos) << name << " not listed: " << r.err;
}

TEST(CliCommands, NoCommandListsThem) {
    const auto r = test::run_strata("");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("a command is required"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("serve"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace strata
