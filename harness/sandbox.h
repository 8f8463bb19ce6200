// Wrapping a command in the sandbox: bubblewrap when it works here, otherwise a documented,
// loudly-flagged fallback (see docs/security.md).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "contract/result.h"

namespace trainopt {

enum class SandboxMode { bubblewrap, none };
std::string to_string(SandboxMode mode);

// Probes whether `bwrap` can create the namespaces we use on this machine, run as the user
// untrusted code runs as (see untrusted_uid below).
SandboxMode detect_sandbox_mode();

struct Mount {
    std::string host_path;
    std::string sandbox_path;
    bool writable = false;
};

// A fresh, size-capped tmpfs: the only writable places a run has.
struct TmpfsMount {
    std::string sandbox_path;
    size_t size_bytes = 0;
};

// A read-only file inside the sandbox whose content is copied from a descriptor the child holds
// (bwrap --ro-bind-data): the file exists only in the sandbox's memory, and nothing about where
// it came from on the host is visible.
struct DataFile {
    int fd = -1;  // the descriptor number as the child sees it (see SpawnSpec::pass_fds)
    std::string sandbox_path;
    int mode = 0444;
};

struct SandboxSpec {
    SandboxMode mode = SandboxMode::bubblewrap;
    std::vector<Mount> mounts;  // on top of a read-only /usr, /etc and a fresh /tmp
    std::vector<TmpfsMount> tmpfs;
    std::vector<DataFile> data_files;
    size_t tmp_size_bytes = (size_t)256 << 20;  // the sandbox's /tmp
    std::vector<std::string> command;           // paths as seen inside the sandbox
    std::string cwd;                            // inside the sandbox
    std::vector<std::string> env;               // NAME=VALUE; empty: sandbox_environment()
};

// The argv that runs `spec.command` sandboxed. With SandboxMode::none it is the command itself;
// the caller then relies on uid separation and directory permissions (docs/security.md).
std::vector<std::string> sandbox_argv(const SandboxSpec& spec);

// A cleared environment: PATH, HOME=/tmp, LANG=C, plus the OpenBLAS CPU overrides when the
// host sets them (some CPUs need them to run OpenBLAS at all).
std::vector<std::string> sandbox_environment();

// A trainer run's environment: sandbox_environment() plus the harness's defaults for every
// trainer, the baseline's and a submission's alike: OMP_WAIT_POLICY=PASSIVE, so OpenMP's idle
// threads sleep instead of spinning on cores the trainer's other threads (OpenBLAS's, oneTBB's)
// need. Measured: an OpenMP submission spinning by default took 29 s where it takes 5 s.
std::vector<std::string> trainer_environment();

// The host uid that sandboxed processes run as: 65534 (nobody) when the harness runs as root, so
// that nothing untrusted is root outside its namespace and per-user limits apply; otherwise the
// harness's own uid (-1: no switch).
int untrusted_uid();

// Hands a tree the harness created (no links in it) to untrusted_uid(), so that untrusted code
// working in it (git apply, the build) can write there and nowhere else. No-op when not root.
Status give_tree_to_untrusted_user(const std::string& root);

// Caps what can be written under `dir` (an empty directory the harness created) at max_bytes:
// a tmpfs of that size is mounted there, in a mount namespace of trainopt's own, so the mount
// needs no cleanup and nothing outside trainopt sees it. A submission's build writes only into
// its scratch tree, so this is what keeps a build from filling the host's disk. Needs root and a
// single-threaded process; false with the reason otherwise.
Status cap_directory_size(const std::string& dir, size_t max_bytes);

// Makes the directory open as `source_fd` appear at `mount_point` (an empty directory the harness
// created where untrusted_uid() may pass), by a bind mount in a mount namespace of trainopt's own:
// the untrusted user then reaches it there (bubblewrap can bind it into a sandbox) without being
// let through the directories above it, and nothing outside trainopt sees the mount. Needs root
// and a single-threaded process; false with the reason otherwise. unbind_privately undoes it.
Status bind_privately(int source_fd, const std::string& mount_point);
void unbind_privately(const std::string& mount_point);

}  // namespace trainopt
