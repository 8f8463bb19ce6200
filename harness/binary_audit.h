// Static checks of a built submission trainer that catch timer tampering: a trainer that
// defines its own clock_gettime (or friends) is trying to fool someone's clock. The harness
// times from the parent, so this cannot change a score, but it is rejected with a clear reason.
#pragma once

#include <string>
#include <vector>

#include "harness/sandbox.h"

namespace trainopt {

struct BinaryAudit {
    std::vector<std::string> problems;  // each rejects the submission
    std::vector<std::string> warnings;  // the check could not run
};

// Audits the harness's private copy of the trainer at `trainer_copy`. `nm` runs sandboxed on
// that copy as the untrusted user, its listings go to `private_dir` (the harness's own), and
// they are read with a size cap.
BinaryAudit audit_trainer_binary(const std::string& trainer_copy, const std::string& private_dir,
                                 SandboxMode mode);

}  // namespace trainopt
