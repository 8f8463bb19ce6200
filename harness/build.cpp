#include "harness/build.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "harness/process.h"
#include "harness/safe_file.h"
#include "harness/sandbox_protocol.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxTrainerBytes = (size_t)1 << 30;
constexpr double kBuildStepSeconds = 900;

// Gives the scratch tree (created by the harness, no links: intake refuses them) to the
// untrusted user, so a build running as that user can write nothing else.
bool hand_over_tree(const std::string& root, int uid, std::string& error) {
    if (uid < 0) return true;
    std::error_code ec;
    auto give = [&](const fs::path& p) {
        return fchownat(AT_FDCWD, p.c_str(), (uid_t)uid, (gid_t)uid, AT_SYMLINK_NOFOLLOW) == 0;
    };
    if (!give(root)) {
        error = "cannot hand the scratch tree to the build user";
        return false;
    }
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (!give(it->path())) {
            error = "cannot hand " + it->path().string() + " to the build user";
            return false;
        }
    }
    if (ec) error = "cannot walk the scratch tree: " + ec.message();
    return !ec;
}

ProcessOutcome run_build_step(const std::string& source_dir, SandboxMode mode,
                              std::vector<std::string> command, const std::string& log_path) {
    SandboxSpec sandbox;
    sandbox.mode = mode;
    sandbox.mounts = {{source_dir, kSandboxSource, true}};
    sandbox.command = std::move(command);
    sandbox.cwd = kSandboxSource;
    SpawnSpec spawn;
    spawn.argv = sandbox_argv(sandbox);
    spawn.env = sandbox_environment();
    spawn.cwd = source_dir;
    spawn.output_path = log_path;
    spawn.timeout_seconds = kBuildStepSeconds;
    spawn.run_as_uid = untrusted_uid();
    return run_process(spawn);
}

}  // namespace

BuildResult build_trainer(const std::string& scratch_root, const std::string& private_dir,
                          SandboxMode mode, int jobs) {
    BuildResult result;
    const std::string source_dir = scratch_root + "/src";
    // Inside the sandbox the tree is at kSandboxSource; without it, at its real path.
    const std::string source_seen = mode == SandboxMode::bubblewrap ? kSandboxSource : source_dir;
    const std::string build_seen = source_seen + "/build";
    const std::string configure_log = scratch_root + "/configure.log";
    result.log_path = scratch_root + "/build.log";
    if (!hand_over_tree(source_dir, untrusted_uid(), result.error)) return result;

    ProcessOutcome configure =
        run_build_step(source_dir, mode,
                       {"/usr/bin/cmake", "-S", source_seen, "-B", build_seen,
                        "-DTRAINOPT_TRAINER_ONLY=ON", "-DCMAKE_BUILD_TYPE=Release"},
                       configure_log);
    result.seconds += configure.wall_seconds;
    if (!configure.succeeded()) {
        result.error = "cmake configure " + configure.describe() + ":\n" + file_tail(configure_log);
        return result;
    }
    ProcessOutcome build = run_build_step(source_dir, mode,
                                          {"/usr/bin/cmake", "--build", build_seen, "--target",
                                           "trainopt-train", "-j", std::to_string(jobs)},
                                          result.log_path);
    result.seconds += build.wall_seconds;
    if (!build.succeeded()) {
        result.error = "build " + build.describe() + ":\n" + file_tail(result.log_path);
        return result;
    }
    // The binary that is audited and run is this private copy, read without following links.
    result.trainer_copy = private_dir + "/trainopt-train";
    std::string error;
    if (!copy_file_beneath(source_dir, "build/baseline/trainopt-train", {kMaxTrainerBytes, 60},
                           result.trainer_copy, 0755, error)) {
        result.error = "the build produced no usable trainer: " + error +
                       " (keep the target name trainopt-train in baseline/CMakeLists.txt)";
        return result;
    }
    result.ok = true;
    return result;
}

}  // namespace trainopt
