// Wrapping a command in the sandbox: bubblewrap when it works here, otherwise a documented,
// loudly-flagged fallback (see docs/security.md).
#pragma once

#include <string>
#include <vector>

namespace trainopt {

enum class SandboxMode { bubblewrap, none };
std::string to_string(SandboxMode mode);

// Probes whether `bwrap` can create the namespaces we use on this machine.
SandboxMode detect_sandbox_mode();

struct Mount {
    std::string host_path;
    std::string sandbox_path;
    bool writable = false;
};

struct SandboxSpec {
    SandboxMode mode = SandboxMode::bubblewrap;
    std::vector<Mount> mounts;         // on top of a read-only /usr, /etc and a fresh /tmp
    std::vector<std::string> command;  // paths as seen inside the sandbox
    std::string cwd;                   // inside the sandbox
    bool allow_network = false;
};

// The argv that runs `spec.command` sandboxed. With SandboxMode::none it is the command itself;
// the caller then relies on uid separation and directory permissions (docs/security.md).
std::vector<std::string> sandbox_argv(const SandboxSpec& spec);

// A cleared environment: PATH, HOME=/tmp, LANG=C, plus the OpenBLAS CPU overrides when the
// host sets them (some CPUs need them to run OpenBLAS at all).
std::vector<std::string> sandbox_environment();

}  // namespace trainopt
