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
constexpr int kBuildMaxProcesses = 1024;
constexpr size_t kBuildMaxFileBytes = (size_t)2 << 30;  // above kMaxTrainerBytes
// per process (RLIMIT_DATA): a compiler of the expert's sources peaks under 0.5 GiB
constexpr size_t kBuildMaxMemoryBytes = (size_t)4 << 30;

// One build step under trainopt-sandbox-init, which limits it and kills whatever it leaves
// running (a daemon started by CMake code must not outlive the build).
ProcessOutcome run_build_step(const std::string& source_dir, const std::string& sandbox_init,
                              SandboxMode mode, const std::vector<std::string>& command,
                              const std::string& log_path) {
    const bool boxed = mode == SandboxMode::bubblewrap;
    SandboxSpec sandbox;
    sandbox.mode = mode;
    SpawnSpec spawn;
    int init_fd = -1;
    if (boxed) {
        init_fd = open(sandbox_init.c_str(), O_RDONLY | O_CLOEXEC);
        if (init_fd < 0) {
            ProcessOutcome failed;
            failed.spawn_error = "cannot open " + sandbox_init;
            return failed;
        }
        sandbox.mounts = {{source_dir, kSandboxSource, true}};
        sandbox.data_files = {{3, kSandboxInit, 0555}};
        sandbox.cwd = kSandboxSource;
        sandbox.command = {kSandboxInit};
        spawn.pass_fds = {init_fd};
        spawn.run_as_uid = untrusted_uid();
    } else {
        sandbox.command = {sandbox_init, "--drop-privileges"};
    }
    sandbox.command.insert(sandbox.command.end(),
                           {"--max-processes", std::to_string(kBuildMaxProcesses),
                            "--max-memory-bytes", std::to_string(kBuildMaxMemoryBytes),
                            "--max-file-bytes", std::to_string(kBuildMaxFileBytes), "--"});
    sandbox.command.insert(sandbox.command.end(), command.begin(), command.end());
    spawn.argv = sandbox_argv(sandbox);
    spawn.env = sandbox_environment();
    spawn.cwd = source_dir;
    spawn.output_path = log_path;
    spawn.timeout_seconds = kBuildStepSeconds;
    ProcessOutcome outcome = run_process(spawn);
    if (init_fd >= 0) close(init_fd);
    return outcome;
}

// Why a build step failed, in words.
std::string step_failure(const char* step, const ProcessOutcome& outcome, const std::string& log) {
    const bool leftovers = outcome.started && !outcome.timed_out && outcome.term_signal == 0 &&
                           outcome.exit_code == kLeftoverExit;
    if (leftovers) return std::string(step) + " left processes running (they were killed)";
    return std::string(step) + " " + outcome.describe() + ":\n" + file_tail(log);
}

}  // namespace

BuildResult build_trainer(const std::string& scratch_root, const std::string& private_dir,
                          const std::string& sandbox_init, SandboxMode mode, int jobs) {
    BuildResult result;
    const std::string source_dir = scratch_root + "/src";
    // Inside the sandbox the tree is at kSandboxSource; without it, at its real path.
    const std::string source_seen = mode == SandboxMode::bubblewrap ? kSandboxSource : source_dir;
    const std::string build_seen = source_seen + "/build";
    const std::string configure_log = scratch_root + "/configure.log";
    result.log_path = scratch_root + "/build.log";
    if (!give_tree_to_untrusted_user(source_dir, result.error)) return result;

    ProcessOutcome configure =
        run_build_step(source_dir, sandbox_init, mode,
                       {"/usr/bin/cmake", "-S", source_seen, "-B", build_seen,
                        "-DTRAINOPT_TRAINER_ONLY=ON", "-DCMAKE_BUILD_TYPE=Release"},
                       configure_log);
    result.seconds += configure.wall_seconds;
    if (!configure.succeeded()) {
        result.error = step_failure("cmake configure", configure, configure_log);
        return result;
    }
    ProcessOutcome build = run_build_step(source_dir, sandbox_init, mode,
                                          {"/usr/bin/cmake", "--build", build_seen, "--target",
                                           "trainopt-train", "-j", std::to_string(jobs)},
                                          result.log_path);
    result.seconds += build.wall_seconds;
    if (!build.succeeded()) {
        result.error = step_failure("build", build, result.log_path);
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
