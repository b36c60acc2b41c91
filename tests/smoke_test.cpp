#include <gtest/gtest.h>

#include "runtime/gguf.h"
#include "tests/test_util.h"

namespace strata {
namespace {

TEST(Smoke, GoldenModelOpens) {
    STRATA_REQUIRE_GOLDEN();
    const auto file = gguf::File::open((test::golden_dir() / "models/llama.f32.gguf").string());
    EXPECT_EQ(file.arch(), "llama");
    EXPECT_EQ(file.tensors().size(), 22u);
}

}  // namespace
}  // namespace strata
