#include "harness/build.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

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

// The honest bound of an incremental build's compile cache: ccache evicts beyond it itself (the
// harness's own bound, which a build cannot change, is kIncrementalMaxBytes in incremental.h).
constexpr const char* kCcacheMaxSize = "200M";
// ccache's per-compilation log, where the build's compilations are counted (CompileCounts)
constexpr const char* kCcacheStatsLog = "ccache-stats.log";
constexpr size_t kMaxStatsLogBytes = (size_t)4 << 20;
// ccache's directory holds DIR/x/y/FILE at most: a saved compile cache deeper than that is refused
// (the harness removes a state with a walk of bounded depth, harness/cache_dir.h)
constexpr int kMaxCompileCacheDepth = 2;

// The two steps' commands; the build step gets "-j N" appended. An incremental build compiles
// through ccache.
std::vector<std::string> configure_command(const std::string& source_seen, bool incremental) {
    std::vector<std::string> command = {"/usr/bin/cmake",
                                        "-S",
                                        source_seen,
                                        "-B",
                                        source_seen + "/build",
                                        "-DTRAINOPT_TRAINER_ONLY=ON",
                                        "-DCMAKE_BUILD_TYPE=Release"};
    if (incremental) {
        command.push_back(std::string("-DCMAKE_C_COMPILER_LAUNCHER=") + kCcachePath);
        command.push_back(std::string("-DCMAKE_CXX_COMPILER_LAUNCHER=") + kCcachePath);
    }
    return command;
}

std::vector<std::string> compile_command(const std::string& source_seen) {
    return {"/usr/bin/cmake", "--build", source_seen + "/build", "--target", "trainopt-train"};
}

// The build steps' environment: an incremental build's tells ccache where its directory is,
// how large it may grow and where to log each compilation.
std::vector<std::string> build_environment(bool incremental) {
    std::vector<std::string> env = sandbox_environment();
    if (incremental) {
        env.push_back(std::string("CCACHE_DIR=") + kSandboxCompileCache);
        env.push_back(std::string("CCACHE_MAXSIZE=") + kCcacheMaxSize);
        env.push_back(std::string("CCACHE_STATSLOG=") + kSandboxSource + "/" + kCcacheStatsLog);
    }
    return env;
}

// The limits trainopt-sandbox-init applies to every build step.
std::vector<std::string> build_limit_arguments() {
    return {"--max-processes",    std::to_string(kBuildMaxProcesses),
            "--max-memory-bytes", std::to_string(kBuildMaxMemoryBytes),
            "--max-file-bytes",   std::to_string(kBuildMaxFileBytes)};
}

// One command of a build, run as the untrusted user in the build's sandbox.
struct BuildStep {
    const char* name;  // "cmake configure": how a failure is reported
    std::vector<std::string> command;
    std::string log_path;
    std::vector<Mount> extra_mounts;  // besides the scratch tree at kSandboxSource
    std::vector<std::string> env;     // empty: build_environment(false)
};

// One build step under trainopt-sandbox-init, which limits it and kills whatever it leaves
// running (a daemon started by CMake code must not outlive the build).
Result<ProcessOutcome> run_build_step(const std::string& source_dir,
                                      const std::string& sandbox_init, SandboxMode mode,
                                      const BuildStep& step) {
    const bool boxed = mode == SandboxMode::bubblewrap;
    SandboxSpec sandbox;
    sandbox.mode = mode;
    SpawnSpec spawn;
    int init_fd = -1;
    if (boxed) {
        init_fd = open(sandbox_init.c_str(), O_RDONLY | O_CLOEXEC);
        if (init_fd < 0) return failure("cannot open " + sandbox_init);
        sandbox.mounts = {{source_dir, kSandboxSource, true}};
        sandbox.mounts.insert(sandbox.mounts.end(), step.extra_mounts.begin(),
                              step.extra_mounts.end());
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
    sandbox.command.insert(sandbox.command.end(), step.command.begin(), step.command.end());
    sandbox.env = step.env.empty() ? build_environment(false) : step.env;
    spawn.argv = sandbox_argv(sandbox);
    spawn.env = sandbox.env;
    spawn.cwd = source_dir;
    spawn.output_path = step.log_path;
    spawn.timeout_seconds = kBuildStepSeconds;
    Result<ProcessOutcome> outcome = run_process(spawn);
    if (init_fd >= 0) close(init_fd);
    return outcome;
}

// Runs a build step and returns its wall time; fails, saying why in words, unless it succeeded.
Result<double> build_step(const std::string& source_dir, const std::string& sandbox_init,
                          SandboxMode mode, const BuildStep& step) {
    Result<ProcessOutcome> outcome = run_build_step(source_dir, sandbox_init, mode, step);
    if (outcome && outcome->succeeded()) return outcome->wall_seconds;
    const bool leftovers = outcome && !outcome->timed_out && outcome->term_signal == 0 &&
                           outcome->exit_code == kLeftoverExit;
    if (leftovers)
        return failure(std::string(step.name) + " left processes running (they were killed)");
    return failure(std::string(step.name) + " " + describe(outcome) + ":\n" +
                   file_tail(step.log_path));
}

// A sandboxed copy of the directory `from` (as the sandbox sees it) into `to`, links copied as
// links: the untrusted user's `cp`, so that the harness never reads what a build wrote.
std::vector<std::string> copy_command(const std::string& from, const std::string& to) {
    return {"/usr/bin/cp", "-R", "-P", "--preserve=mode,timestamps", from + "/.", to};
}

// Restores the saved compile cache `saved` into scratch_root/ccache (created here, for the
// untrusted user). A restore that fails leaves it empty: the build compiles everything.
Status prepare_compile_cache(const std::string& scratch_root, const std::string& sandbox_init,
                             const std::string& saved) {
    const std::string dir = scratch_root + "/ccache";
    if (mkdir(dir.c_str(), 0700) != 0 || chmod(dir.c_str(), 0700) != 0)
        return failure("cannot create " + dir + ": " + strerror(errno));
    if (Status given = give_tree_to_untrusted_user(dir); !given) return given;
    if (saved.empty()) return {};
    BuildStep restore{
        "restoring the compile cache",
        copy_command(kSandboxSavedCompileCache, kSandboxCompileCache),
        scratch_root + "/ccache-restore.log",
        {{saved, kSandboxSavedCompileCache, false}, {dir, kSandboxCompileCache, true}},
        {}};
    Result<double> restored =
        build_step(scratch_root + "/src", sandbox_init, SandboxMode::bubblewrap, restore);
    if (restored) return {};
    std::error_code ignored;
    fs::remove_all(dir, ignored);  // no link followed; the build is over, nothing writes there
    if (mkdir(dir.c_str(), 0700) != 0 || chmod(dir.c_str(), 0700) != 0)
        return failure("cannot create " + dir + ": " + strerror(errno));
    if (Status given = give_tree_to_untrusted_user(dir); !given) return given;
    spdlog::warn(
        "incremental build: the workspace's compile cache was not restored ({}); "
        "compiling everything",
        restored.error());
    return {};
}

// The compilations ccache logged in the scratch tree: a record ("# FILE" and its counters) with
// a cache hit came from the cache, one with a cache_miss was compiled. Empty when the log is
// missing or unreadable (read bounded, no link followed).
std::optional<CompileCounts> count_compilations(const std::string& source_dir) {
    Result<std::string> log =
        read_file_beneath(source_dir, kCcacheStatsLog, {kMaxStatsLogBytes, 5});
    if (!log) return std::nullopt;
    CompileCounts counts;
    bool hit = false, miss = false;
    auto close_record = [&] {
        if (hit)
            counts.from_cache++;
        else if (miss)
            counts.compiled++;
        hit = miss = false;
    };
    std::istringstream lines(*log);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("# ", 0) == 0) close_record();
        if (line == "direct_cache_hit" || line == "preprocessed_cache_hit") hit = true;
        if (line == "cache_miss") miss = true;
    }
    close_record();
    return counts;
}

// The bytes and entries of the untrusted tree `dir`, from its metadata alone (no file read, no
// link followed); stops counting past `max_files` entries or `max_depth` levels.

// `too_deep`: something lies more than `max_depth` directories below `dir`.
struct TreeSize {
    size_t bytes = 0;
    size_t entries = 0;
    bool too_deep = false;
};

TreeSize measure_tree(const std::string& dir, size_t max_files, int max_depth) {
    TreeSize size;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (++size.entries > max_files) break;
        if (it.depth() > max_depth) {
            size.too_deep = true;
            break;
        }
        const fs::file_status st = it->symlink_status(ec);
        if (!ec && fs::is_regular_file(st)) size.bytes += it->file_size(ec);
    }
    return size;
}

}  // namespace

Result<BuiltTrainer> build_trainer(const std::string& scratch_root, const std::string& private_dir,
                                   const std::string& sandbox_init, SandboxMode mode, int jobs,
                                   const CompileCacheUse* compile_cache) {
    BuiltTrainer built;
    const std::string source_dir = scratch_root + "/src";
    // Inside the sandbox the tree is at kSandboxSource; without it, at its real path.
    const std::string source_seen = source_seen_by_build(mode, source_dir);
    const bool incremental = compile_cache != nullptr;
    if (incremental && mode != SandboxMode::bubblewrap)
        return failure("an incremental build needs bubblewrap");
    if (Status given = give_tree_to_untrusted_user(source_dir); !given)
        return failure(given.error());
    std::vector<Mount> mounts;
    if (incremental) {
        Status prepared =
            prepare_compile_cache(scratch_root, sandbox_init, compile_cache->restore_from);
        if (!prepared) return failure(prepared.error());
        mounts.push_back({scratch_root + "/ccache", kSandboxCompileCache, true});
    }
    const std::vector<std::string> env = build_environment(incremental);

    Result<double> configure =
        build_step(source_dir, sandbox_init, mode,
                   {"cmake configure", configure_command(source_seen, incremental),
                    scratch_root + "/configure.log", mounts, env});
    if (!configure) return failure(configure.error());
    std::vector<std::string> compile_argv = compile_command(source_seen);
    compile_argv.insert(compile_argv.end(), {"-j", std::to_string(jobs)});
    Result<double> compile =
        build_step(source_dir, sandbox_init, mode,
                   {"build", compile_argv, scratch_root + "/build.log", mounts, env});
    if (!compile) return failure(compile.error());
    built.seconds = *configure + *compile;
    spdlog::info("build: configured in {:.1f} s, compiled and linked in {:.1f} s", *configure,
                 *compile);
    if (incremental) built.compilations = count_compilations(source_dir);
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

Status save_compile_cache(const std::string& scratch_root, const std::string& save_to,
                          const std::string& sandbox_init, size_t max_bytes, size_t max_files) {
    const std::string dir = scratch_root + "/ccache";
    const TreeSize size = measure_tree(dir, max_files, kMaxCompileCacheDepth);
    if (size.entries > max_files)
        return failure("it holds more than " + std::to_string(max_files) + " files");
    if (size.too_deep) {
        // what ccache never writes, and deeper than the harness's removal walks
        return failure("it nests directories deeper than the " +
                       std::to_string(kMaxCompileCacheDepth) + " levels ccache uses");
    }
    if (size.bytes > max_bytes) {
        return failure("it holds " + std::to_string(size.bytes >> 20) + " MiB, more than the " +
                       std::to_string(max_bytes >> 20) + " MiB kept");
    }
    BuildStep save{"saving the compile cache",
                   copy_command(kSandboxCompileCache, kSandboxSavedCompileCache),
                   scratch_root + "/ccache-save.log",
                   {{dir, kSandboxCompileCache, false}, {save_to, kSandboxSavedCompileCache, true}},
                   {}};
    Result<double> saved =
        build_step(scratch_root + "/src", sandbox_init, SandboxMode::bubblewrap, save);
    if (!saved) return failure(saved.error());
    return {};
}

std::string build_recipe(SandboxMode mode, bool incremental) {
    auto line = [](const std::string& label, const std::vector<std::string>& words) {
        std::string out = label;
        for (const std::string& w : words) out += " " + w;
        return out + "\n";
    };
    const std::string source_seen = source_seen_by_build(mode, "");
    std::string recipe = "sandbox " + to_string(mode) + "\n";
    recipe += line("limits", build_limit_arguments());
    recipe += line("environment", build_environment(incremental));
    recipe += line("configure", configure_command(source_seen, incremental));
    recipe += line("build", compile_command(source_seen));
    recipe += "copied out build/baseline/trainopt-train\n";
    return recipe;
}

}  // namespace trainopt
