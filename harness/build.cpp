#include "harness/build.h"

#include <filesystem>

#include "harness/process.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

ProcessOutcome run_sandboxed_build_step(const std::string& source_dir, SandboxMode mode,
                                        std::vector<std::string> command,
                                        const std::string& log_path) {
    SandboxSpec sandbox;
    sandbox.mode = mode;
    sandbox.mounts = {{source_dir, source_dir, true}};
    sandbox.command = std::move(command);
    sandbox.cwd = source_dir;
    SpawnSpec spawn;
    spawn.argv = sandbox_argv(sandbox);
    spawn.env = sandbox_environment();
    spawn.cwd = source_dir;
    spawn.output_path = log_path;
    spawn.timeout_seconds = 900;
    return run_process(spawn);
}

}  // namespace

BuildResult build_trainer(const std::string& source_dir, SandboxMode mode, int jobs) {
    BuildResult result;
    const std::string build_dir = source_dir + "/build";
    result.build_root = build_dir;
    result.trainer_path = build_dir + "/baseline/trainopt-train";
    const std::string configure_log = source_dir + "/../configure.log";
    result.log_path = source_dir + "/../build.log";

    ProcessOutcome configure =
        run_sandboxed_build_step(source_dir, mode,
                                 {"/usr/bin/cmake", "-S", source_dir, "-B", build_dir,
                                  "-DTRAINOPT_TRAINER_ONLY=ON", "-DCMAKE_BUILD_TYPE=Release"},
                                 configure_log);
    result.seconds += configure.wall_seconds;
    if (!configure.succeeded()) {
        result.error = "cmake configure " + configure.describe() + ":\n" + file_tail(configure_log);
        return result;
    }
    ProcessOutcome build =
        run_sandboxed_build_step(source_dir, mode,
                                 {"/usr/bin/cmake", "--build", build_dir, "--target",
                                  "trainopt-train", "-j", std::to_string(jobs)},
                                 result.log_path);
    result.seconds += build.wall_seconds;
    if (!build.succeeded()) {
        result.error = "build " + build.describe() + ":\n" + file_tail(result.log_path);
        return result;
    }
    if (!fs::is_regular_file(result.trainer_path)) {
        result.error = "the build succeeded but produced no " + result.trainer_path +
                       " (keep the target name trainopt-train in baseline/CMakeLists.txt)";
        return result;
    }
    result.ok = true;
    return result;
}

}  // namespace trainopt
