// Running one task: R repetitions of baseline and submission, interleaved (A B A B), each a
// fresh sandboxed process with a fresh seed and nonce, timed by the parent and verified against
// the baseline run of the same seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "harness/process.h"
#include "harness/sandbox.h"
#include "harness/verify.h"
#include "tasks/task_spec.h"

namespace trainopt {

struct HarnessContext {
    std::string project_root;  // the pristine source tree
    std::string sandbox_init;  // trainopt-sandbox-init
    SandboxMode sandbox = SandboxMode::bubblewrap;
    std::string workdir;    // private scratch space for this invocation (root-only when root)
    int threads = 2;        // --threads passed to trainers (the cores a submission may use)
    std::vector<int> cpus;  // the cores a run is pinned to (threads of them)
    double timeout_seconds = 1800;
    size_t max_memory_bytes = (size_t)8 << 30;  // RLIMIT_DATA of every trainer process
    int max_processes = 512;                    // RLIMIT_NPROC (threads count) inside a run
};

// A trainer is one self-contained binary (system libraries aside): runs get a copy of it, not
// its build tree.
struct TrainerBuild {
    std::string trainer_path;  // a binary only the harness can write
};

struct TaskData {
    std::string train_dir;     // holds train.bin only; the trainer sees this directory
    std::string task_file;     // a private copy of the task file
    std::vector<int> heldout;  // never leaves the trusted process
};

bool prepare_task_inputs(const HarnessContext& ctx, const TaskSpec& task, TaskData& out,
                         std::string& error);

struct TrainerRun {
    ProcessOutcome process;
    bool left_processes = false;  // the trainer left processes running (they were killed)
    bool init_failed = false;     // trainopt-sandbox-init could not set the run up
    std::string run_dir;          // the run's private directory (log, exported outputs)
    std::string export_dir;       // the outputs as collected by trainopt-sandbox-init
    std::string log_path;
    std::vector<std::string> collect_problems;  // outputs that could not be collected
};

// One sandboxed run of `build` on `task`, in a fresh private directory under ctx.workdir.
TrainerRun run_trainer(const HarnessContext& ctx, const TrainerBuild& build, const TaskSpec& task,
                       const TaskData& data, uint64_t seed, const std::string& nonce);

struct RepResult {
    uint64_t seed = 0;
    double baseline_seconds = 0;
    double submission_seconds = 0;
    double submission_cpu_seconds = 0;
    double baseline_max_rss_mb = 0;
    double submission_max_rss_mb = 0;
    Verification verification;
    std::vector<std::string> warnings;
    std::map<std::string, double> baseline_kernel_seconds;
    std::map<std::string, double> submission_kernel_seconds;
};

struct TaskEvaluation {
    TaskSpec task;
    std::vector<RepResult> reps;
    bool valid = true;
    std::vector<std::string> reasons;   // why invalid (deduplicated)
    std::vector<std::string> warnings;  // flagged but not invalidating
    std::string harness_error;          // the baseline itself failed: no score possible
};

using RepCallback = std::function<void(const TaskEvaluation&, int rep, const std::string& stage)>;

// Runs `reps` repetitions, seeds drawn from base_seed. A repetition runs the baseline, reads and
// keeps its outputs in memory and deletes them, then runs the submission and verifies it.
TaskEvaluation evaluate_task(const HarnessContext& ctx, const TrainerBuild& baseline,
                             const TrainerBuild& submission, const TaskSpec& task, int reps,
                             uint64_t base_seed, const RepCallback& on_progress);

std::string random_nonce();
uint64_t random_seed();

}  // namespace trainopt
