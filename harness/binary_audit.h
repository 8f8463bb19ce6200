// Static checks of a built submission trainer that catch timer tampering: a trainer that
// defines its own clock_gettime (or friends) is trying to fool someone's clock. The harness
// times from the parent, so this cannot change a score, but it is rejected with a clear reason.
#pragma once

#include <string>
#include <vector>

namespace trainopt {

// Problems found in the binary at `path` (empty when clean, or when nm is unavailable, which
// is reported as a warning instead).
std::vector<std::string> audit_trainer_binary(const std::string& path,
                                              std::vector<std::string>& warnings);

}  // namespace trainopt
