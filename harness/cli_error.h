// How every trainopt command reports an error: one line on stderr, "trainopt: error: ...", the
// message (which may quote reports, logs or paths) made terminal-safe with continuation lines
// indented, and exit code 1.
#pragma once

#include <string>
#include <string_view>

namespace trainopt {

constexpr int kExitError = 1;

// `text` through terminal_safe() with every continuation line indented by four spaces.
std::string safe_indented(std::string_view text);

// Prints the error and returns kExitError.
int fail(const std::string& message);

}  // namespace trainopt
