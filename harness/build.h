// Building a trainer: the pristine baseline (part of the main build) or a submission's scratch
// copy, configured with TRAINOPT_TRAINER_ONLY and built inside the sandbox without network.
#pragma once

#include <string>

#include "harness/sandbox.h"

namespace trainopt {

struct BuildResult {
    bool ok = false;
    std::string trainer_path;  // the built trainopt-train
    std::string build_root;    // directory the trainer's build lives in
    std::string log_path;
    std::string error;  // with the tail of the build log
    double seconds = 0;
};

BuildResult build_trainer(const std::string& source_dir, SandboxMode mode, int jobs);

}  // namespace trainopt
