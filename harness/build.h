// Building a submission's trainer in its scratch copy of the pristine tree, configured with
// TRAINOPT_TRAINER_ONLY, inside the sandbox without network, as the untrusted user. The scratch
// tree is mounted at the same neutral path (/sandbox/src) for the build and for every run, so
// the paths the build embeds resolve and say nothing about the host.
#pragma once

#include <string>

#include "harness/sandbox.h"

namespace trainopt {

struct BuildResult {
    bool ok = false;
    std::string build_tree;    // host path of the scratch tree's build/, mounted read-only in runs
    std::string trainer_copy;  // the built trainopt-train, copied into the harness's private dir
    std::string log_path;
    std::string error;  // with the tail of the build log
    double seconds = 0;
};

// `scratch_root` holds src/ (the patched tree); logs go next to it. `private_dir` is the
// harness's own directory, where the trainer binary is copied (without following links).
BuildResult build_trainer(const std::string& scratch_root, const std::string& private_dir,
                          SandboxMode mode, int jobs);

}  // namespace trainopt
