// The one error type of the library: a one-line message that names the file, key, tensor or
// argument at fault. The CLI prints it as `strata: error: <message>`.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace strata {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Usage errors (bad command-line arguments) exit with status 2 instead of 1.
class UsageError : public Error {
  public:
    using Error::Error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace strata
