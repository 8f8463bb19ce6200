// SHA-256 (FIPS 180-4): pins a text task's data (tasks/data.h) and the trusted inputs' hashes
// (harness/trusted_inputs.h).
#pragma once

#include <string>
#include <string_view>

namespace trainopt {

// SHA-256 of `data` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace trainopt
