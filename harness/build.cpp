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

constexpr double kBuildStepSeconds = 900;
constexpr int kBuildMaxProcesses = 1024;
constexpr size_t kBuildMaxFileBytes = (size_t)2 << 30;  // above kMaxTrainerBytes
// per process (RLIMIT_DATA): a compiler of the expert's sources peaks under 0.5 GiB
constexpr size_t kBuildMaxMemoryBytes = (size_t)4 << 30;

// Where the scratch tree's src/ is, as the build sees it. Without the sandbox, the real path of
// `source_dir` (empty: a placeholder, for the recipe).
std::string source_seen_by_build(SandboxMode mode, const std::string& source_dir) {
    if (mode == SandboxMode::bubblewrap) return kSandboxSource;
    return source_dir.empty() ? "<scratch>/src" : source_dir;
}

// The two steps' commands; the build step gets "-j N" appended.
std::vector<std::string> configure_command(const std::string& source_seen) {
    return {"/usr/bin/cmake",
            "-S",
            source_seen,
            "-B",
            source_seen + "/build",
            "-DTRAINOPT_TRAINER_ONLY=ON",
            "-DCMAKE_BUILD_TYPE=Release"};
}

std::vector<std::string> compile_command(const std::string& source_seen) {
    return {"/usr/bin/cmake", "--build", source_seen + "/build", "--target", "trainopt-train"};
}

// The limits trainopt-sandbox-init applies to every build step.
std::vector<std::string> build_limit_arguments() {
    return {"--max-processes",    std::to_string(kBuildMaxProcesses),
            "--max-memory-bytes", std::to_string(kBuildMaxMemoryBytes),
            "--max-file-bytes",   std::to_string(kBuildMaxFileBytes)};
}

// One build step under trainopt-sandbox-init, which limits it and kills whatever it leaves
// running (a daemon started by CMake code must not outlive the build).
Result<ProcessOutcome> run_build_step(const std::string& source_dir,
                                      const std::string& sandbox_init, SandboxMode mode,
                                      const std::vector<std::string>& command,
                                      const std::string& log_path) {
    const bool boxed = mode == SandboxMode::bubblewrap;
    SandboxSpec sandbox;
    sandbox.mode = mode;
    SpawnSpec spawn;
    int init_fd = -1;
    if (boxed) {
        init_fd = open(sandbox_init.c_str(), O_RDONLY | O_CLOEXEC);
        if (init_fd < 0) return failure("cannot open " + sandbox_init);
        sandbox.mounts = {{source_dir, kSandboxSource, true}};
        sandbox.data_files = {{3, kSandboxInit, 0555}};
        sandbox.cwd = kSandboxSource;
        sandbox.command = {kSandboxInit};
        spawn.pass_fds = {init_fd};
        spawn.run_as_uid = untrusted_uid();
    } else {
        sandbox.command = {sandbox_init, "--drop-privileges"};
    }
    const std::vector<std::string> limits = build_limit_arguments();
    sandbox.command.insert(sandbox.command.end(), limits.begin(), limits.end());
    sandbox.command.push_back("--");
    sandbox.command.insert(sandbox.command.end(), command.begin(), command.end());
    spawn.argv = sandbox_argv(sandbox);
    spawn.env = sandbox_environment();
    spawn.cwd = source_dir;
    spawn.output_path = log_path;
    spawn.timeout_seconds = kBuildStepSeconds;
    Result<ProcessOutcome> outcome = run_process(spawn);
    if (init_fd >= 0) close(init_fd);
    return outcome;
}

// Runs a build step and returns its wall time; fails, saying why in words, unless it succeeded.
Result<double> build_step(const char* step, const std::string& source_dir,
                          const std::string& sandbox_init, SandboxMode mode,
                          const std::vector<std::string>& command, const std::string& log_path) {
    Result<ProcessOutcome> outcome =
        run_build_step(source_dir, sandbox_init, mode, command, log_path);
    if (outcome && outcome->succeeded()) return outcome->wall_seconds;
    const bool leftovers = outcome && !outcome->timed_out && outcome->term_signal == 0 &&
                           outcome->exit_code == kLeftoverExit;
    if (leftovers) return failure(std::string(step) + " left processes running (they were killed)");
    return failure(std::string(step) + " " + describe(outcome) + ":\n" + file_tail(log_path));
}

}  // namespace

Result<BuiltTrainer> build_trainer(const std::string& scratch_root, const std::string& private_dir,
                                   const std::string& sandbox_init, SandboxMode mode, int jobs) {
    BuiltTrainer built;
    const std::string source_dir = scratch_root + "/src";
    // Inside the sandbox the tree is at kSandboxSource; without it, at its real path.
    const std::string source_seen = source_seen_by_build(mode, source_dir);
    if (Status given = give_tree_to_untrusted_user(source_dir); !given)
        return failure(given.error());

    Result<double> configure =
        build_step("cmake configure", source_dir, sandbox_init, mode,
                   configure_command(source_seen), scratch_root + "/configure.log");
    if (!configure) return failure(configure.error());
    std::vector<std::string> compile_argv = compile_command(source_seen);
    compile_argv.insert(compile_argv.end(), {"-j", std::to_string(jobs)});
    Result<double> compile = build_step("build", source_dir, sandbox_init, mode, compile_argv,
                                        scratch_root + "/build.log");
    if (!compile) return failure(compile.error());
    built.seconds = *configure + *compile;
    // The binary that is audited and run is this private copy, read without following links.
    built.trainer_copy = private_dir + "/trainopt-train";
    Status copied = copy_file_beneath(source_dir, "build/baseline/trainopt-train",
                                      {kMaxTrainerBytes, 60}, built.trainer_copy, 0755);
    if (!copied) {
        return failure("the build produced no usable trainer: " + copied.error() +
                       " (keep the target name trainopt-train in baseline/CMakeLists.txt)");
    }
    return built;
}

std::string build_recipe(SandboxMode mode) {
    auto line = [](const std::string& label, const std::vector<std::string>& words) {
        std::string out = label;
        for (const std::string& w : words) out += " " + w;
        return out + "\n";
    };
    const std::string source_seen = source_seen_by_build(mode, "");
    std::string recipe = "sandbox " + to_string(mode) + "\n";
    recipe += line("limits", build_limit_arguments());
    recipe += line("environment", sandbox_environment());
    recipe += line("configure", configure_command(source_seen));
    recipe += line("build", compile_command(source_seen));
    recipe += "copied out build/baseline/trainopt-train\n";
    return recipe;
}

}  // namespace trainopt
