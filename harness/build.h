// Building a submission's trainer in its scratch copy of the pristine tree, configured with
// TRAINOPT_TRAINER_ONLY, inside the sandbox without network, as the untrusted user, with the
// scratch tree at a neutral path (/sandbox/src). Only the trainer binary leaves the build: runs
// get a private copy of it, so it must not need files of its build tree (link statically).
#pragma once

#include <string>

#include "harness/sandbox.h"

namespace trainopt {

struct BuildResult {
    bool ok = false;
    std::string trainer_copy;  // the built trainopt-train, copied into the harness's private dir
    std::string log_path;
    std::string error;  // with the tail of the build log
    double seconds = 0;
};

// `scratch_root` holds src/ (the patched tree); logs go next to it. `private_dir` is the
// harness's own directory, where the trainer binary is copied (without following links).
// Each step runs under `sandbox_init` (trainopt-sandbox-init) with process and file-size limits.
BuildResult build_trainer(const std::string& scratch_root, const std::string& private_dir,
                          const std::string& sandbox_init, SandboxMode mode, int jobs);

}  // namespace trainopt
