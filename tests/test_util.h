// Helpers shared by the tests: temporary directories and running the CLI as a user would.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "harness/process.h"
#include "harness/sandbox.h"
#include "scoring/report.h"

namespace trainopt::testing {

inline std::string project_root() {
    return TRAINOPT_SOURCE_DIR;
}

// A fresh directory, removed when the object goes away.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/trainopt-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

struct CliResult {
    int exit_code = -1;
    std::string output;
};

inline std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline void write_text(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
}

// The environment the tests run trainopt in: the sandbox's, plus the tests' build cache
// (harness/build_cache.h), one directory in the build tree that every run shares, so that a
// submission several tests score is built once. Tests that need a cache of their own pass
// --build-cache.
inline std::vector<std::string> test_environment() {
    std::vector<std::string> env = sandbox_environment();
    env.push_back("XDG_CACHE_HOME=" TRAINOPT_TEST_CACHE_HOME);
    return env;
}

inline CliResult run_command(const std::vector<std::string>& argv, const std::string& log_path) {
    SpawnSpec spec;
    spec.argv = argv;
    spec.env = test_environment();
    spec.output_path = log_path;
    spec.timeout_seconds = 900;
    Result<ProcessOutcome> outcome = run_process(spec);
    return {outcome && outcome->term_signal == 0 ? outcome->exit_code : -1, read_text(log_path)};
}

inline CliResult run_cli(std::vector<std::string> args, const std::string& log_path) {
    args.insert(args.begin(), TRAINOPT_CLI);
    return run_command(args, log_path);
}

inline nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    return nlohmann::json::parse(f, nullptr, false);
}

// All reasons in a report (rejections and per-task reasons), one string, for substring checks.
inline std::string all_reasons(const nlohmann::json& report) {
    std::string out;
    if (report.is_discarded()) return out;
    for (const auto& r : report["rejected"]) out += r.get<std::string>() + "\n";
    for (const auto& t : report["tasks"]) {
        for (const auto& r : t["reasons"]) out += r.get<std::string>() + "\n";
    }
    return out;
}

// The entries of a build or baseline cache (harness/cache_dir.h): its key-named directories.
inline std::vector<std::string> cache_entries(const std::string& cache) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(cache, ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() == 64) out.push_back(name);
    }
    return out;
}

// A complete score of tasks "x" and "y" (spec hashes of 'a's and y_spec) with three repetitions
// on a 2-core test machine, not yet finalized: baseline runs of 10, 10.1 and 9.9 s, submission
// runs of `scale` times 1, 1.01 and 0.99 s. The caller sets what its test varies, then calls
// finalize_report.
inline ScoreReport two_task_report(const std::string& submission, double scale,
                                   const std::string& y_spec = std::string(64, 'b')) {
    ScoreReport r;
    r.submission = submission;
    r.submission_kind = "overlay";
    r.suite = "test";
    r.sandbox = "bubblewrap";
    r.machine = {"host", "CPU", 2};
    r.reps = 3;
    r.complete = true;
    for (const auto& [name, spec] : {std::pair{"x", std::string(64, 'a')}, {"y", y_spec}}) {
        TaskReport t;
        t.name = name;
        t.spec_hash = spec;
        t.baseline_seconds = {10, 10.1, 9.9};
        t.submission_seconds = {scale, scale * 1.01, scale * 0.99};
        t.steps = 1;
        r.tasks.push_back(t);
    }
    return r;
}

}  // namespace trainopt::testing
