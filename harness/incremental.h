// Incremental builds for the agent's edit-and-check loop (`check`, `verify`), never for the
// official numbers (`score`, `ci`): a workspace's trainer compiles through ccache, whose
// directory is kept between builds, so after a one-kernel edit only that file is compiled again.
//
// A workspace's state is an entry of a trusted cache directory (harness/cache_dir.h), named by a
// key over the submission's canonical path, the user, trainopt's executable and trusted-input
// manifest, the toolchain, the CPU and the incremental build recipe: another workspace, user,
// trainopt or compiler never shares it. The entry (this user's, mode 0700) holds manifest.json
// and ccache/, the saved compile cache, which builds wrote: untrusted. The harness never reads
// its files: a sandboxed `cp` as the untrusted user copies it into the scratch tree's tmpfs
// before a build and back into a fresh directory after it (refused beyond kIncrementalMaxBytes,
// kIncrementalMaxFiles or a depth ccache never uses, counted from metadata alone; what a killed
// trainopt left half saved is removed after an hour). A trainer
// built this way is stored in the build cache under a key of its own (incremental_build_key),
// which `score` and `ci` never compute, and is audited and verified like any other.
// docs/security.md explains why that is safe.
#pragma once

#include <cstddef>
#include <string>

#include "contract/result.h"
#include "harness/build.h"
#include "harness/build_key.h"
#include "harness/cache_dir.h"

namespace trainopt {

constexpr int kIncrementalFormat = 1;  // part of every state key; bump when the layout changes
constexpr size_t kIncrementalMaxBytes = (size_t)256 << 20;  // one workspace's compile cache
constexpr size_t kIncrementalMaxFiles = 20000;
constexpr size_t kIncrementalMaxWorkspaces = 8;  // the least recently used beyond are removed

struct IncrementalOptions {
    bool enabled = true;  // --no-incremental: false
    bool clear = false;   // --clear-incremental: the workspace's state is discarded first
    std::string dir;      // --incremental-dir DIR; empty: default_incremental_dir()
};

// What an incremental build of a submission needs to know besides the build.
struct IncrementalRequest {
    IncrementalOptions options;
    std::string submission;  // the submission's path as given (made canonical for the key)
};

// $XDG_CACHE_HOME/trainopt/incremental, else $HOME/.cache/trainopt/incremental.
Result<std::string> default_incremental_dir();

// Why an incremental build cannot be done here (empty: it can): it needs bubblewrap (the state
// is only ever used inside the build sandbox) and ccache.
std::string incremental_unavailable(SandboxMode mode);

// The key of the state of the submission at `submission` (canonical path) for the build whose
// key inputs are `inputs` (everything but the tree itself) and this user.
std::string incremental_state_key(const std::string& canonical_submission,
                                  const BuildKeyInputs& inputs);

// The build cache key of a trainer built incrementally from the state `state_key` out of the
// tree whose clean build key is `clean_key`: never the key of a clean build.
std::string incremental_build_key(const std::string& clean_key, const std::string& state_key);

// What an incremental build did, for the log and the reports.
struct IncrementalOutcome {
    bool restored = false;  // started from the workspace's saved compile cache
    std::string discarded;  // non-empty: the saved state failed a check (why); removed
    std::string not_saved;  // non-empty: the compile cache was not saved (why)
};

// Builds the trainer of scratch_root/src incrementally with the state `state_key` in
// `options.dir`: the state is checked (an entry that is a link, another owner's, open to others,
// or whose ccache/ is not a directory of the build user's closed to others is discarded, saying
// why), restored, built through, and saved again whether the build succeeded or not. Fails as
// build_trainer does, or when the state directory cannot be used (the caller then builds from
// scratch).
struct IncrementalBuild {
    Result<BuiltTrainer> trainer = failure("not built");
    IncrementalOutcome outcome;
};
Result<IncrementalBuild> build_trainer_incrementally(const IncrementalOptions& options,
                                                     const std::string& state_key,
                                                     const std::string& scratch_root,
                                                     const std::string& private_dir,
                                                     const std::string& sandbox_init, int jobs);

}  // namespace trainopt
