// The error convention of trusted code: a function that can fail returns Result<T>, either the
// value or a message that says what failed and on what (a file, a key, a task), in words an
// operator can act on. Callers that add context prefix it: "task small: " + result.error().
#pragma once

#include <expected>
#include <string>

namespace trainopt {

template <class T>
using Result = std::expected<T, std::string>;

// An operation that yields nothing but can fail.
using Status = std::expected<void, std::string>;

inline std::unexpected<std::string> failure(std::string message) {
    return std::unexpected<std::string>(std::move(message));
}

}  // namespace trainopt
