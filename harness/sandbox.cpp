#include "harness/sandbox.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "harness/process.h"
#include "harness/sandbox_protocol.h"

namespace trainopt {

namespace fs = std::filesystem;

std::string to_string(SandboxMode mode) {
    return mode == SandboxMode::bubblewrap ? "bubblewrap" : "none";
}

namespace {

const char* kBwrap = "/usr/bin/bwrap";

// Root-level system directories: bind real directories, recreate merged-/usr symlinks.
void add_system_mounts(std::vector<std::string>& argv, size_t tmp_size_bytes) {
    argv.insert(argv.end(), {"--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"});
    for (const char* dir : {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}) {
        std::error_code ec;
        if (fs::is_symlink(dir, ec)) {
            argv.insert(argv.end(), {"--symlink", fs::read_symlink(dir, ec).string(), dir});
        } else if (fs::is_directory(dir, ec)) {
            argv.insert(argv.end(), {"--ro-bind", dir, dir});
        }
    }
    if (fs::is_directory("/sys")) argv.insert(argv.end(), {"--ro-bind", "/sys", "/sys"});
    argv.insert(argv.end(), {"--proc", "/proc", "--dev", "/dev", "--size",
                             std::to_string(tmp_size_bytes), "--tmpfs", "/tmp"});
}

}  // namespace

std::vector<std::string> sandbox_argv(const SandboxSpec& spec) {
    if (spec.mode == SandboxMode::none) return spec.command;
    const std::string id = std::to_string(kNobodyId);
    std::vector<std::string> argv = {kBwrap,
                                     "--unshare-user",
                                     "--disable-userns",
                                     "--uid",
                                     id,
                                     "--gid",
                                     id,
                                     "--unshare-pid",
                                     "--unshare-ipc",
                                     "--unshare-uts",
                                     "--unshare-net",
                                     "--unshare-cgroup-try",
                                     "--die-with-parent",
                                     "--new-session",
                                     "--as-pid-1",
                                     "--clearenv"};
    add_system_mounts(argv, spec.tmp_size_bytes);
    for (const TmpfsMount& t : spec.tmpfs) {
        argv.insert(argv.end(),
                    {"--size", std::to_string(t.size_bytes), "--tmpfs", t.sandbox_path});
    }
    for (const DataFile& f : spec.data_files) {
        char mode[8];
        snprintf(mode, sizeof(mode), "%04o", f.mode);
        argv.insert(argv.end(),
                    {"--perms", mode, "--ro-bind-data", std::to_string(f.fd), f.sandbox_path});
    }
    for (const Mount& m : spec.mounts) {
        argv.insert(argv.end(), {m.writable ? "--bind" : "--ro-bind", m.host_path, m.sandbox_path});
    }
    // Nothing else is writable: no unbounded tmpfs at / or /dev (/dev/null stays usable).
    argv.insert(argv.end(), {"--remount-ro", "/dev", "--remount-ro", "/"});
    for (const std::string& kv : spec.env.empty() ? sandbox_environment() : spec.env) {
        size_t eq = kv.find('=');
        argv.insert(argv.end(), {"--setenv", kv.substr(0, eq), kv.substr(eq + 1)});
    }
    if (!spec.cwd.empty()) argv.insert(argv.end(), {"--chdir", spec.cwd});
    argv.push_back("--");
    argv.insert(argv.end(), spec.command.begin(), spec.command.end());
    return argv;
}

std::vector<std::string> sandbox_environment() {
    std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C",
                                    "TMPDIR=/tmp"};
    for (const char* name : {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}) {
        if (const char* value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
    }
    return env;
}

std::vector<std::string> trainer_environment() {
    std::vector<std::string> env = sandbox_environment();
    env.push_back("OMP_WAIT_POLICY=PASSIVE");
    return env;
}

int untrusted_uid() {
    return geteuid() == 0 ? (int)kNobodyId : -1;
}

Status give_tree_to_untrusted_user(const std::string& root) {
    const int uid = untrusted_uid();
    if (uid < 0) return {};
    auto give = [&](const fs::path& p) -> Status {
        if (fchownat(AT_FDCWD, p.c_str(), (uid_t)uid, (gid_t)uid, AT_SYMLINK_NOFOLLOW) != 0)
            return failure("cannot hand " + p.string() + " to the untrusted user");
        return {};
    };
    if (Status given = give(root); !given) return given;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (Status given = give(it->path()); !given) return given;
    }
    if (ec) return failure("cannot walk " + root + ": " + ec.message());
    return {};
}

SandboxMode detect_sandbox_mode() {
    if (!fs::exists(kBwrap)) return SandboxMode::none;
    SandboxSpec probe;
    probe.command = {"/bin/true"};
    SpawnSpec spawn;
    spawn.argv = sandbox_argv(probe);
    spawn.env = sandbox_environment();
    spawn.run_as_uid = untrusted_uid();
    spawn.cwd = "/";
    spawn.timeout_seconds = 20;
    Result<ProcessOutcome> probe_run = run_process(spawn);
    return probe_run && probe_run->succeeded() ? SandboxMode::bubblewrap : SandboxMode::none;
}

// Moves trainopt into a mount namespace of its own, whose mounts no other process sees; once per
// process: a second namespace would leave the descriptors opened in the first one unmountable
// (a bind mount's source must be in the caller's namespace).
static Status enter_private_mount_namespace() {
    static bool entered = false;  // a fact about this process, as its mount namespace is
    if (entered) return {};
    if (geteuid() != 0) return failure("not root");
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return failure(std::string("cannot make a mount namespace: ") + strerror(errno));
    entered = true;
    return {};
}

Status cap_directory_size(const std::string& dir, size_t max_bytes) {
    if (Status entered = enter_private_mount_namespace(); !entered) return entered;
    const std::string options = "size=" + std::to_string(max_bytes) + ",mode=0711";
    if (mount("trainopt-scratch", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0)
        return failure("cannot mount a tmpfs on " + dir + ": " + strerror(errno));
    return {};
}

Status bind_privately(int source_fd, const std::string& mount_point) {
    if (Status entered = enter_private_mount_namespace(); !entered) return entered;
    const std::string source = "/proc/self/fd/" + std::to_string(source_fd);
    if (mount(source.c_str(), mount_point.c_str(), nullptr, MS_BIND, nullptr) != 0)
        return failure("cannot bind it onto " + mount_point + ": " + strerror(errno));
    return {};
}

void unbind_privately(const std::string& mount_point) {
    umount2(mount_point.c_str(), MNT_DETACH);
}

}  // namespace trainopt
