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

#include "contract/result.h"
#include "harness/cache_dir.h"
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
    // set: the baseline's reference outputs are taken from this cache when it holds them for the
    // run's inputs, and stored in it after a baseline run (harness/baseline_cache.h); then a
    // repetition has no baseline time. Not owned. `verify --seed` and `check` set it.
    const CacheDir* baseline_cache = nullptr;
};

// A trainer is one self-contained binary (system libraries aside): runs get a copy of it, not
// its build tree.
struct TrainerBuild {
    std::string trainer_path;  // a binary only the harness can write
};

struct TaskData {
    std::string train_dir;     // holds train.bin only; the trainer sees this directory
    std::string task_file;     // a private copy of the task file
    std::vector<int> train;    // train.bin's tokens, for the reference's windows
    std::vector<int> heldout;  // never leaves the trusted process
};

// Generates the task's data: train.bin and a copy of the task file in a fresh directory under
// ctx.workdir, the held-out tokens in memory.
Result<TaskData> prepare_task_inputs(const HarnessContext& ctx, const TaskSpec& task);

struct TrainerRun {
    ProcessOutcome process;
    bool left_processes = false;  // the trainer left processes running (they were killed)
    bool init_failed = false;     // trainopt-sandbox-init could not set the run up
    std::string run_dir;          // the run's private directory (log, exported outputs)
    std::string export_dir;       // the outputs as collected by trainopt-sandbox-init
    std::string log_path;
    std::vector<std::string> collect_problems;  // outputs that could not be collected
};

// A segment of a run (contract/trainer_io.h): the steps before `until`, from the state file
// `state` (its bytes, written by the harness; empty: from the seed's initial weights, step 0).
// The run writes state.bin instead of final.ckpt.
struct SegmentRequest {
    int until = 0;
    std::string state;
};

// A run under a sampling profiler (harness/profile.h): `prefix` is started in the trainer's
// place, inside the same sandbox and under the same limits, and runs the trainer itself (e.g.
// "/usr/bin/perf record ... --"); it writes `output` into the run's working directory, the
// output directory, and that file is collected with the run's outputs, at most max_bytes.
struct ProfilerRequest {
    std::vector<std::string> prefix;
    std::string output;
    size_t max_bytes = 0;
};

// One sandboxed run of `build` on `task`, in a fresh private directory under ctx.workdir; a
// segment of the run when `segment` is given, a run under a profiler when `profiler` is. Fails
// when the run could not be set up or started (its directory is removed then).
Result<TrainerRun> run_trainer(const HarnessContext& ctx, const TrainerBuild& build,
                               const TaskSpec& task, const TaskData& data, uint64_t seed,
                               const std::string& nonce, const SegmentRequest* segment = nullptr,
                               const ProfilerRequest* profiler = nullptr);

// Fails with the first reason a run that started gives no usable outputs; `who` names the
// trainer in the message.
Status check_run_finished(const TrainerRun& run, const std::string& who);

// Deletes a run's private directory.
void remove_run(const TrainerRun& run);

struct RepResult {
    uint64_t seed = 0;
    // the baseline's outputs came from the baseline cache: it did not run, baseline_seconds and
    // baseline_max_rss_mb are 0 and there is no speedup
    bool baseline_cached = false;
    double baseline_seconds = 0;
    double submission_seconds = 0;
    double submission_cpu_seconds = 0;
    double baseline_max_rss_mb = 0;
    double submission_max_rss_mb = 0;
    Verification verification;
    double verify_seconds = 0;  // the harness's time verifying it (and replaying it, if local)
    std::vector<std::string> warnings;
    std::map<std::string, double> baseline_kernel_seconds;
    std::map<std::string, double> submission_kernel_seconds;
};

// The baseline's run of one repetition, kept in memory: its outputs are the reference.
struct BaselineRun {
    bool cached = false;  // the outputs came from the baseline cache; nothing ran or was timed
    double seconds = 0;
    double max_rss_mb = 0;
    ReferenceRun reference;  // outputs only; the rest when there is something to verify
};

// Runs the baseline with the seed, reads its outputs and deletes its run: nothing of it is left
// on disk while the submission runs. Fails, with its log, when the baseline gives no usable
// outputs.
Result<BaselineRun> run_baseline(const HarnessContext& ctx, const TrainerBuild& baseline,
                                 const TaskSpec& task, const TaskData& data, uint64_t seed);

// Runs the submission with the repetition's seed and a fresh nonce and verifies its outputs
// against the baseline's; completes the baseline's reference (initial weights, held-out loss)
// the first time there is something to verify, so a batch computes it once per seed; on a task
// checked "local", replays it in segments (harness/replay.h). Fails only when the harness was
// interrupted. `announce` is told "verify" and "replay" as they start.
Result<RepResult> run_submission(const HarnessContext& ctx, const TrainerBuild& submission,
                                 const TaskSpec& task, const TaskData& data, uint64_t seed,
                                 BaselineRun& base,
                                 const std::function<void(const std::string&)>& announce);

struct TaskEvaluation {
    TaskSpec task;
    double data_seconds = 0;  // generating the task's tokens
    std::vector<RepResult> reps;
    bool valid = true;
    std::vector<std::string> reasons;   // why invalid (deduplicated)
    std::vector<std::string> warnings;  // flagged but not invalidating
};

// Adds a finished repetition to the task's evaluation (invalid when the repetition is).
void record_repetition(TaskEvaluation& eval, RepResult rep);

// Called as a repetition moves through its stages: "baseline", "submission", "verify" (only
// when the submission's outputs are usable), "replay" (step-local verification, tasks checked
// "local", when the whole run passed) and "done" (the repetition is in eval.reps).
using RepCallback = std::function<void(const TaskEvaluation&, int rep, const std::string& stage)>;

// The seeds of a task's repetitions: drawn from base_seed (the score's seed plus the task's
// offset), the same for a score and a batch.
std::vector<uint64_t> repetition_seeds(uint64_t base_seed, int reps);

// Runs up to `reps` repetitions of eval.task, seeds drawn from base_seed, and records each
// finished one in `eval` (stopping after the first invalid one). A repetition runs the
// baseline (or takes its outputs from ctx.baseline_cache), keeps its outputs in memory and
// deletes them, then runs the submission and verifies it. Fails when no score is possible: the
// task's data could not be prepared, the baseline failed (both mark the task invalid) or the
// harness was interrupted; the repetitions that finished stay in `eval`.
Status evaluate_task(const HarnessContext& ctx, const TrainerBuild& baseline,
                     const TrainerBuild& submission, int reps, uint64_t base_seed,
                     const RepCallback& on_progress, TaskEvaluation& eval);

// A paired comparison's first round on one task (harness/paired_ci.h): the baseline once with
// `seed`, then each of `trainers` in the order given, each verified against the baseline's
// outputs as in a score's repetition. Fails when the baseline failed or on an interrupt.
Result<std::vector<RepResult>> run_verified_round(const HarnessContext& ctx,
                                                  const TrainerBuild& baseline,
                                                  const std::vector<const TrainerBuild*>& trainers,
                                                  const TaskSpec& task, const TaskData& data,
                                                  uint64_t seed);

// One run timed by the parent whose outputs are checked to be complete and to carry the run's
// nonce, but not compared with a reference: a paired comparison's later rounds.
struct TimedRun {
    double wall_seconds = 0;
    double cpu_seconds = 0;
    std::vector<std::string> problems;  // why the run's outputs are unusable; empty: usable
};
Result<TimedRun> run_timed(const HarnessContext& ctx, const TrainerBuild& build,
                           const TaskSpec& task, const TaskData& data, uint64_t seed);

std::string random_nonce();
uint64_t random_seed();

}  // namespace trainopt
