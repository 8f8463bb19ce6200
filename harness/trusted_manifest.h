// The manifest of trusted inputs, generated at build time by harness/trusted_manifest.cmake into
// <build>/harness/trusted_manifest.cpp (after the baseline trainer and trainopt-sandbox-init are
// built). Only harness/trusted_inputs.cpp reads it.
#pragma once

#include <cstddef>

#include "harness/trusted_inputs.h"

namespace trainopt::manifest {

struct FileHash {
    const char* path;    // relative to the pristine root, '/'-separated
    const char* sha256;  // 64 lowercase hex digits
};

// Every regular file of the pristine trainer tree, sorted by path.
extern const FileHash kPristineFiles[];
extern const size_t kPristineFileCount;

extern const char* const kBaselineTrainerSha256;
extern const char* const kSandboxInitSha256;

// Where the build tree keeps them (development runs).
extern const char* const kBuildBaselineTrainer;
extern const char* const kBuildSandboxInit;

// tasks/<suite>/<name>.toml, paths relative to tasks/.
extern const EmbeddedFile kTaskFiles[];
extern const size_t kTaskFileCount;

// The agent-facing workspace documents, paths relative to the workspace.
extern const EmbeddedFile kWorkspaceDocs[];
extern const size_t kWorkspaceDocCount;

}  // namespace trainopt::manifest
