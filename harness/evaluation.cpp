#include "harness/evaluation.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "kernels/gpt.h"
#include "kernels/rng.h"
#include "tasks/data.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr int kLeftoverExit = 125;  // trainopt-sandbox-init's "processes were left behind"
constexpr uid_t kNobody = 65534;

void add_unique(std::vector<std::string>& list, const std::string& item) {
    if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

// The first reason a run gives no usable outputs, or "" when it finished cleanly.
std::string run_failure(const TrainerRun& run, const char* who) {
    if (run.left_processes) {
        return std::string(who) + " left processes running after it exited (they were killed)";
    }
    if (!run.process.succeeded()) {
        std::string tail = file_tail(run.log_path, 600);
        return std::string(who) + " " + run.process.describe() + (tail.empty() ? "" : ": " + tail);
    }
    return "";
}

}  // namespace

std::string random_nonce() {
    std::random_device rd;
    char buf[33];
    for (int i = 0; i < 4; i++) snprintf(buf + 8 * i, 9, "%08x", rd());
    return buf;
}

uint64_t random_seed() {
    std::random_device rd;
    return ((uint64_t)rd() << 20) ^ rd();
}

bool prepare_task_inputs(const HarnessContext& ctx, const TaskSpec& task, TaskData& out,
                         std::string& error) {
    TokenSplit split;
    if (!make_task_data(task, split, error)) return false;
    out.train_dir = ctx.workdir + "/data/" + task.name;
    fs::create_directories(out.train_dir);
    chmod(out.train_dir.c_str(), 0755);
    if (!write_tokens(out.train_dir + "/train.bin", split.train, task.model.vocab_size, error)) {
        return false;
    }
    chmod((out.train_dir + "/train.bin").c_str(), 0644);
    out.heldout = std::move(split.heldout);
    return true;
}

TrainerRun run_trainer(const HarnessContext& ctx, const TrainerBuild& build, const TaskSpec& task,
                       const TaskData& data, uint64_t seed, const std::string& nonce,
                       const std::string& run_dir) {
    TrainerRun run;
    run.out_dir = run_dir + "/out";
    run.log_path = run_dir + "/trainer.log";
    fs::create_directories(run.out_dir);
    // Runs are private to the harness: without a sandbox, a trainer running as nobody cannot
    // read another run's outputs (see docs/security.md).
    chmod(run_dir.c_str(), 0711);

    const std::string seed_str = std::to_string(seed);
    const std::string threads_str = std::to_string(ctx.threads);
    SandboxSpec sandbox;
    sandbox.mode = ctx.sandbox;
    if (ctx.sandbox == SandboxMode::bubblewrap) {
        sandbox.mounts = {{build.build_root, build.build_root, false},
                          {ctx.sandbox_init, "/sandbox/init", false},
                          {task.file, "/sandbox/task.toml", false},
                          {data.train_dir, "/sandbox/data", false},
                          {run.out_dir, "/sandbox/out", true}};
        sandbox.cwd = "/sandbox/out";
        sandbox.command = {"/sandbox/init",
                           "--",
                           build.trainer_path,
                           "--task",
                           "/sandbox/task.toml",
                           "--data",
                           "/sandbox/data",
                           "--seed",
                           seed_str,
                           "--out",
                           "/sandbox/out",
                           "--nonce",
                           nonce,
                           "--threads",
                           threads_str};
    } else {
        if (geteuid() == 0) {
            chmod(run.out_dir.c_str(), 0700);
            (void)!chown(run.out_dir.c_str(), kNobody, kNobody);
        }
        sandbox.command = {ctx.sandbox_init,
                           "--drop-privileges",
                           "--",
                           build.trainer_path,
                           "--task",
                           fs::absolute(task.file).string(),
                           "--data",
                           data.train_dir,
                           "--seed",
                           seed_str,
                           "--out",
                           run.out_dir,
                           "--nonce",
                           nonce,
                           "--threads",
                           threads_str};
    }
    SpawnSpec spawn;
    spawn.argv = sandbox_argv(sandbox);
    spawn.env = sandbox_environment();
    spawn.cwd = run.out_dir;
    spawn.output_path = run.log_path;
    spawn.timeout_seconds = ctx.timeout_seconds;
    run.process = run_process(spawn);
    run.left_processes = run.process.started && !run.process.timed_out &&
                         run.process.term_signal == 0 && run.process.exit_code == kLeftoverExit;
    if (ctx.sandbox == SandboxMode::none) chmod(run.out_dir.c_str(), 0700);
    return run;
}

TaskEvaluation evaluate_task(const HarnessContext& ctx, const TrainerBuild& baseline,
                             const TrainerBuild& submission, const TaskSpec& task, int reps,
                             uint64_t base_seed, const RepCallback& on_progress) {
    TaskEvaluation eval;
    eval.task = task;
    TaskData data;
    std::string error;
    if (!prepare_task_inputs(ctx, task, data, error)) {
        eval.harness_error = error;
        eval.valid = false;
        return eval;
    }
    const GPTConfig config{task.model.vocab_size, task.model.context, task.model.d_model,
                           task.model.layers, task.model.heads};
    Rng seeds(base_seed);
    for (int r = 0; r < reps; r++) {
        RepResult rep;
        rep.seed = seeds.next_u64() >> 16;
        const std::string rep_dir = ctx.workdir + "/runs/" + task.name + "/rep" + std::to_string(r);

        if (on_progress) on_progress(eval, r, "baseline");
        const std::string baseline_nonce = random_nonce();
        TrainerRun base =
            run_trainer(ctx, baseline, task, data, rep.seed, baseline_nonce, rep_dir + "-baseline");
        std::string failure = run_failure(base, "the baseline trainer");
        ReferenceRun reference;
        std::vector<std::string> problems;
        if (failure.empty() && !read_run_outputs(base.out_dir, task, reference.outputs, problems)) {
            failure = "the baseline's outputs are unreadable: " + problems.front();
        }
        if (failure.empty() && reference.outputs.nonce != baseline_nonce) {
            failure = "the baseline's meta.json lacks the nonce";
        }
        if (!failure.empty()) {
            eval.harness_error = failure + " (see " + base.log_path + ")";
            eval.valid = false;
            return eval;
        }
        rep.baseline_seconds = base.process.wall_seconds;
        rep.baseline_max_rss_mb = base.process.max_rss_mb;
        rep.baseline_kernel_seconds = reference.outputs.kernel_seconds;

        if (on_progress) on_progress(eval, r, "submission");
        const std::string nonce = random_nonce();
        TrainerRun sub =
            run_trainer(ctx, submission, task, data, rep.seed, nonce, rep_dir + "-submission");
        rep.submission_seconds = sub.process.wall_seconds;
        rep.submission_max_rss_mb = sub.process.max_rss_mb;
        rep.submission_cpu_seconds = sub.process.user_seconds + sub.process.sys_seconds;
        const double allowed = ctx.threads * 1.10 + 0.05;
        if (sub.process.wall_seconds > 0 &&
            rep.submission_cpu_seconds / sub.process.wall_seconds > allowed) {
            rep.warnings.push_back(
                "the submission used " +
                std::to_string(rep.submission_cpu_seconds / sub.process.wall_seconds) +
                " CPUs on average, more than the " + std::to_string(ctx.threads) + " allowed");
        }
        failure = run_failure(sub, "the submission's trainer");
        RunOutputs outputs;
        if (!failure.empty()) {
            rep.verdict.reasons.push_back(failure);
        } else if (!read_run_outputs(sub.out_dir, task, outputs, problems)) {
            rep.verdict.reasons = problems;
        } else {
            if (on_progress) on_progress(eval, r, "verify");
            reference.init_params.assign(num_parameters(config), 0.0f);
            gpt_init_params(reference.init_params.data(), config, rep.seed);
            reference.heldout =
                heldout_loss(task, reference.outputs.checkpoint.params, data.heldout);
            rep.verdict = verify_run(task, reference, outputs, nonce, data.heldout);
            rep.submission_kernel_seconds = outputs.kernel_seconds;
        }
        rep.verdict.valid = rep.verdict.reasons.empty();
        if (!rep.verdict.valid) eval.valid = false;
        for (const std::string& reason : rep.verdict.reasons) add_unique(eval.reasons, reason);
        for (const std::string& warning : rep.warnings) add_unique(eval.warnings, warning);
        eval.reps.push_back(std::move(rep));
        if (on_progress) on_progress(eval, r, "done");
        // An invalid submission stays invalid; more repetitions would only burn time.
        if (!eval.valid) break;
    }
    return eval;
}

}  // namespace trainopt
