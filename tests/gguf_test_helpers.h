// Helpers shared by the GGUF tests: catching a strata::Error's message and expecting its content.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "runtime/error.h"

namespace strata::test {

// The message of the strata::Error that `fn` throws, or "(no error)".
template <typename Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

inline bool contains(const std::string& message, const std::string& part) {
    return message.find(part) != std::string::npos;
}

}  // namespace strata::test

// Expects `statement` to throw strata::Error whose message contains `text`; prints both if not.
#define EXPECT_ERROR(statement, text) \
    EXPECT_PRED2(::strata::test::contains, ::strata::test::error_of([&] { statement; }), text)
