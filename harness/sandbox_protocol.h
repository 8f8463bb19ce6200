// What the harness and trainopt-sandbox-init agree on: exit codes, the unprivileged id runs use,
// and the fixed paths a run sees inside the sandbox. The paths are the same for every run and
// say nothing about the host, so a trainer learns nothing from them.
#pragma once

namespace trainopt {

// trainopt-sandbox-init's exit codes besides the trainer's own.
constexpr int kLeftoverExit = 125;  // the trainer left processes running (they were killed)
constexpr int kInitError = 124;     // init could not set up the run

// uid and gid of every untrusted process: "nobody", inside the sandbox and on the host.
constexpr unsigned kNobodyId = 65534;

// Written by init into the export directory when an output could not be collected.
constexpr const char* kCollectProblemsFile = "collect-problems.txt";

// Paths inside the sandbox.
constexpr const char* kSandboxInit = "/sandbox/init";
constexpr const char* kSandboxTrainer = "/sandbox/bin/trainopt-train";
constexpr const char* kSandboxTask = "/sandbox/task.toml";
constexpr const char* kSandboxData = "/sandbox/data";
constexpr const char* kSandboxOut = "/sandbox/out";
constexpr const char* kSandboxState = "/sandbox/state.bin";  // a segment's state to resume from
constexpr const char* kSandboxSource = "/sandbox/src";       // a submission's scratch tree (builds)
// an incremental build's compile cache (ccache's directory, in the scratch tree's tmpfs), and the
// workspace's saved one it is restored from and saved to (harness/incremental.h)
constexpr const char* kSandboxCompileCache = "/sandbox/ccache";
constexpr const char* kSandboxSavedCompileCache = "/sandbox/saved-ccache";

}  // namespace trainopt
