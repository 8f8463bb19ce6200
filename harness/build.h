// Building a submission's trainer in its scratch copy of the pristine tree, configured with
// TRAINOPT_TRAINER_ONLY, inside the sandbox without network, as the untrusted user, with the
// scratch tree at a neutral path (/sandbox/src). Only the trainer binary leaves the build: runs
// get a private copy of it, so it must not need files of its build tree (link statically).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "contract/result.h"
#include "harness/sandbox.h"

namespace trainopt {

// The largest trainer binary that leaves a build (and that the build cache keeps).
constexpr size_t kMaxTrainerBytes = (size_t)1 << 30;

// The ccache the build compiles through.
constexpr const char* kCcachePath = "/usr/bin/ccache";

// An incremental build (harness/incremental.h) compiles through ccache, whose directory is
// scratch_root/ccache (inside the scratch tree's size cap), seen by the build as
// kSandboxCompileCache. The build starts from a copy of the workspace's saved compile cache,
// made by a sandboxed `cp` as the untrusted user: the harness never reads what a build wrote
// there. Bubblewrap only.
struct CompileCacheUse {
    std::string restore_from;  // a saved compile cache (host path); empty: start from none
};

// ccache's count of the compilations of a build, from its stats log in the scratch tree: written
// by the build, so it informs (the agent, the tests) and decides nothing.
struct CompileCounts {
    int compiled = 0;    // compiled now: cache misses
    int from_cache = 0;  // taken from the compile cache
};

struct BuiltTrainer {
    std::string trainer_copy;  // the built trainopt-train, copied into the harness's private dir
    double seconds = 0;        // configure and build, wall time
    // an incremental build's compilations; empty for a build from scratch, or when the build left
    // no readable stats log
    std::optional<CompileCounts> compilations;
};

// `scratch_root` holds src/ (the patched tree); logs go next to it. `private_dir` is the
// harness's own directory, where the trainer binary is copied (without following links).
// Each step runs under `sandbox_init` (trainopt-sandbox-init) with process and file-size limits.
// With `compile_cache`, an incremental build: configured with ccache as the compiler launcher,
// after the saved compile cache is restored (a restore that fails leaves an empty one, with a
// warning). A failure says which step failed and how, with the tail of its log.
Result<BuiltTrainer> build_trainer(const std::string& scratch_root, const std::string& private_dir,
                                   const std::string& sandbox_init, SandboxMode mode, int jobs,
                                   const CompileCacheUse* compile_cache = nullptr);

// After an incremental build (successful or not): copies scratch_root/ccache into `save_to`, an
// empty directory the harness made for the untrusted user, by a sandboxed `cp` as that user.
// Refused, before anything is copied, when the compile cache holds more than `max_bytes` or
// `max_files`, or directories deeper than ccache makes (counted without reading a file or
// following a link).
Status save_compile_cache(const std::string& scratch_root, const std::string& save_to,
                          const std::string& sandbox_init, size_t max_bytes, size_t max_files);

// What build_trainer does to a tree, in words: the sandbox mode, the configure and build commands
// (paths as the build sees them), the environment and the limits they run under. Part of the
// build cache's key (harness/build_cache.h), so a change to how trainers are built is a change of
// key. The -j count is left out: it changes how fast a build runs, not what it produces.
// `incremental`: the recipe of an incremental build (a different key, harness/incremental.h).
std::string build_recipe(SandboxMode mode, bool incremental = false);

}  // namespace trainopt
