// Building a submission's trainer in its scratch copy of the pristine tree, configured with
// TRAINOPT_TRAINER_ONLY, inside the sandbox without network, as the untrusted user, with the
// scratch tree at a neutral path (/sandbox/src). Only the trainer binary leaves the build: runs
// get a private copy of it, so it must not need files of its build tree (link statically).
#pragma once

#include <cstddef>
#include <string>

#include "contract/result.h"
#include "harness/sandbox.h"

namespace trainopt {

// The largest trainer binary that leaves a build (and that the build cache keeps).
constexpr size_t kMaxTrainerBytes = (size_t)1 << 30;

struct BuiltTrainer {
    std::string trainer_copy;  // the built trainopt-train, copied into the harness's private dir
    double seconds = 0;        // configure and build, wall time
};

// `scratch_root` holds src/ (the patched tree); logs go next to it. `private_dir` is the
// harness's own directory, where the trainer binary is copied (without following links).
// Each step runs under `sandbox_init` (trainopt-sandbox-init) with process and file-size limits.
// A failure says which step failed and how, with the tail of its log.
Result<BuiltTrainer> build_trainer(const std::string& scratch_root, const std::string& private_dir,
                                   const std::string& sandbox_init, SandboxMode mode, int jobs);

// What build_trainer does to a tree, in words: the sandbox mode, the configure and build commands
// (paths as the build sees them), the environment and the limits they run under. Part of the
// build cache's key (harness/build_cache.h), so a change to how trainers are built is a change of
// key. The -j count is left out: it changes how fast a build runs, not what it produces.
std::string build_recipe(SandboxMode mode);

}  // namespace trainopt
