#include "harness/evaluation.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "contract/model_layout.h"
#include "contract/rng.h"
#include "harness/safe_file.h"
#include "harness/sandbox_protocol.h"
#include "scoring/untrusted_text.h"
#include "tasks/data.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr size_t kOutputSlackBytes = (size_t)16 << 20;  // room for a trainer's own scratch files
constexpr size_t kMinFileBytes = (size_t)256 << 20;     // RLIMIT_FSIZE floor (logs, temp files)
constexpr double kCpuAllowanceFactor = 1.05;   // CPU time per allowed core-second of wall time
constexpr double kCpuAllowanceSeconds = 0.25;  // sandbox start-up and teardown

void add_unique(std::vector<std::string>& list, const std::string& item) {
    if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

// The first reason a run gives no usable outputs, or "" when it finished cleanly.
std::string run_failure(const TrainerRun& run, const char* who) {
    if (run.init_failed) {
        return std::string(who) +
               " could not be started in the sandbox: " + file_tail(run.log_path, 600);
    }
    if (run.left_processes) {
        return std::string(who) + " left processes running after it exited (they were killed)";
    }
    if (!run.process.succeeded()) {
        std::string tail = file_tail(run.log_path, 600);
        return std::string(who) + " " + run.process.describe() + (tail.empty() ? "" : ": " + tail);
    }
    return "";
}

std::string join_cpus(const std::vector<int>& cpus) {
    std::string out;
    for (int cpu : cpus) out += (out.empty() ? "" : ",") + std::to_string(cpu);
    return out;
}

// A fresh directory under `parent` with a random name, private to the harness.
bool make_private_dir(const std::string& parent, mode_t mode, std::string& path,
                      std::string& error) {
    path = parent + "/" + random_nonce().substr(0, 16);
    if (mkdir(path.c_str(), mode) != 0 || chmod(path.c_str(), mode) != 0) {
        error = "cannot create " + path + ": " + strerror(errno);
        return false;
    }
    return true;
}

// trainopt-sandbox-init's arguments: the run's limits and what to collect from its outputs.
std::vector<std::string> init_arguments(const HarnessContext& ctx, const TaskSpec& task,
                                        const std::string& out_dir_seen) {
    const OutputCaps caps = output_caps(task);
    std::vector<std::string> args = {
        "--max-processes",    std::to_string(ctx.max_processes),
        "--max-memory-bytes", std::to_string(ctx.max_memory_bytes),
        "--max-file-bytes",   std::to_string(std::max(kMinFileBytes, 2 * caps.final_ckpt)),
        "--out-dir",          out_dir_seen,
        "--export-fd",        "3",
        "--collect",          "losses.csv:" + std::to_string(caps.losses_csv),
        "--collect",          "final.ckpt:" + std::to_string(caps.final_ckpt),
        "--collect",          "meta.json:" + std::to_string(caps.meta_json)};
    if (!ctx.cpus.empty()) args.insert(args.end(), {"--cpus", join_cpus(ctx.cpus)});
    return args;
}

size_t out_tmpfs_bytes(const TaskSpec& task) {
    const OutputCaps caps = output_caps(task);
    return caps.losses_csv + caps.final_ckpt + caps.meta_json + kOutputSlackBytes;
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
    Result<TokenSplit> split = make_task_data(task);
    if (!split) {
        error = split.error();
        return false;
    }
    std::string inputs;
    if (!make_private_dir(ctx.workdir, 0755, inputs, error)) return false;
    out.train_dir = inputs + "/data";
    out.task_file = inputs + "/task.toml";
    if (mkdir(out.train_dir.c_str(), 0755) != 0 || chmod(out.train_dir.c_str(), 0755) != 0) {
        error = "cannot create " + out.train_dir;
        return false;
    }
    if (Status written =
            write_tokens(out.train_dir + "/train.bin", split->train, task.model.vocab_size);
        !written) {
        error = written.error();
        return false;
    }
    chmod((out.train_dir + "/train.bin").c_str(), 0644);
    std::error_code ec;
    fs::copy_file(task.file, out.task_file, ec);
    if (ec || chmod(out.task_file.c_str(), 0644) != 0) {
        error = "cannot copy the task file " + task.file + ": " + ec.message();
        return false;
    }
    out.heldout = std::move(split->heldout);
    return true;
}

TrainerRun run_trainer(const HarnessContext& ctx, const TrainerBuild& build, const TaskSpec& task,
                       const TaskData& data, uint64_t seed, const std::string& nonce) {
    TrainerRun run;
    const bool boxed = ctx.sandbox == SandboxMode::bubblewrap;
    const int uid = untrusted_uid();
    std::string error;
    // Boxed, nothing untrusted needs to reach the run directory by path; without the sandbox the
    // trainer (uid nobody) must traverse it to its output directory, and no further.
    if (!make_private_dir(ctx.workdir, boxed ? 0700 : 0711, run.run_dir, error)) {
        run.process.spawn_error = error;
        return run;
    }
    run.log_path = run.run_dir + "/trainer.log";
    run.export_dir = run.run_dir + "/export";
    mkdir(run.export_dir.c_str(), 0700);
    // Boxed, init runs as the untrusted uid and writes the exports itself.
    if (boxed && uid >= 0) (void)!chown(run.export_dir.c_str(), (uid_t)uid, (gid_t)uid);
    // Descriptors handed to the run: the export directory (3), then the inputs bwrap copies into
    // the sandbox's memory (4..7), so no host path of theirs is visible inside.
    const std::vector<std::string> handed = {run.export_dir, ctx.sandbox_init, build.trainer_path,
                                             data.task_file, data.train_dir + "/train.bin"};
    std::vector<int> fds;
    for (const std::string& path : handed) {
        const bool is_dir = fds.empty();
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
        if (fd < 0) {
            run.process.spawn_error = "cannot open " + path + ": " + strerror(errno);
            for (int open_fd : fds) close(open_fd);
            return run;
        }
        fds.push_back(fd);
        if (!boxed) break;  // the fallback passes only the export directory
    }

    const std::vector<std::string> trainer_args = {
        "--seed", std::to_string(seed), "--nonce", nonce, "--threads", std::to_string(ctx.threads)};
    SandboxSpec sandbox;
    sandbox.mode = ctx.sandbox;
    SpawnSpec spawn;
    if (boxed) {
        sandbox.data_files = {{4, kSandboxInit, 0555},
                              {5, kSandboxTrainer, 0555},
                              {6, kSandboxTask, 0444},
                              {7, std::string(kSandboxData) + "/train.bin", 0444}};
        sandbox.tmpfs = {{kSandboxOut, out_tmpfs_bytes(task)}};
        sandbox.cwd = kSandboxOut;
        sandbox.command = {kSandboxInit};
        for (const std::string& a : init_arguments(ctx, task, kSandboxOut)) {
            sandbox.command.push_back(a);
        }
        sandbox.command.insert(sandbox.command.end(),
                               {"--", kSandboxTrainer, "--task", kSandboxTask, "--data",
                                kSandboxData, "--out", kSandboxOut});
        spawn.run_as_uid = uid;
        spawn.cwd = "/";
    } else {
        const std::string out_dir = run.run_dir + "/out";
        mkdir(out_dir.c_str(), 0700);
        if (uid >= 0) (void)!chown(out_dir.c_str(), (uid_t)uid, (gid_t)uid);
        sandbox.command = {ctx.sandbox_init, "--drop-privileges"};
        for (const std::string& a : init_arguments(ctx, task, out_dir)) {
            sandbox.command.push_back(a);
        }
        sandbox.command.insert(sandbox.command.end(),
                               {"--", build.trainer_path, "--task", data.task_file, "--data",
                                data.train_dir, "--out", out_dir});
        spawn.cwd = out_dir;
    }
    sandbox.command.insert(sandbox.command.end(), trainer_args.begin(), trainer_args.end());
    spawn.argv = sandbox_argv(sandbox);
    spawn.env = sandbox_environment();
    spawn.output_path = run.log_path;
    spawn.timeout_seconds = ctx.timeout_seconds;
    spawn.pass_fds = fds;
    run.process = run_process(spawn);
    for (int fd : fds) close(fd);
    const bool exited =
        run.process.started && !run.process.timed_out && run.process.term_signal == 0;
    run.left_processes = exited && run.process.exit_code == kLeftoverExit;
    run.init_failed = exited && run.process.exit_code == kInitError;

    std::string problems;
    if (read_file_beneath(run.export_dir, kCollectProblemsFile, {64 << 10, 10}, problems, error)) {
        std::istringstream lines(problems);
        std::string line;
        while (std::getline(lines, line)) {
            if (!line.empty()) run.collect_problems.push_back(terminal_safe_line(line));
        }
    }
    return run;
}

namespace {

// Reads a finished run's collected outputs; "" when usable, else why not.
std::string read_outputs(const TrainerRun& run, const TaskSpec& task, RunOutputs& outputs,
                         std::vector<std::string>& problems) {
    for (const std::string& p : run.collect_problems) problems.push_back(p);
    if (!problems.empty()) return problems.front();
    if (!read_run_outputs(run.export_dir, task, outputs, problems)) return problems.front();
    return "";
}

void remove_run(const TrainerRun& run) {
    std::error_code ec;
    if (!run.run_dir.empty()) fs::remove_all(run.run_dir, ec);
}

}  // namespace

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
    const GPTConfig config = gpt_config_of(task);
    Rng seeds(base_seed);
    for (int r = 0; r < reps; r++) {
        RepResult rep;
        rep.seed = seeds.next_u64() >> 16;

        if (on_progress) on_progress(eval, r, "baseline");
        const std::string baseline_nonce = random_nonce();
        TrainerRun base = run_trainer(ctx, baseline, task, data, rep.seed, baseline_nonce);
        if (interrupted()) {
            remove_run(base);
            eval.harness_error = "interrupted";  // what was verified so far stands
            return eval;
        }
        std::string failure = run_failure(base, "the baseline trainer");
        ReferenceRun reference;
        std::vector<std::string> problems;
        if (failure.empty()) {
            std::string why = read_outputs(base, task, reference.outputs, problems);
            if (!why.empty()) failure = "the baseline's outputs are unusable: " + why;
        }
        if (failure.empty() && reference.outputs.nonce != baseline_nonce) {
            failure = "the baseline's meta.json lacks the nonce";
        }
        // The reference lives in memory from here on: nothing of the baseline's run is left on
        // disk while the submission runs.
        const std::string baseline_log = file_tail(base.log_path, 2000);
        remove_run(base);
        if (!failure.empty()) {
            eval.harness_error =
                failure + (baseline_log.empty() ? "" : "; its log: " + baseline_log);
            eval.valid = false;
            return eval;
        }
        rep.baseline_seconds = base.process.wall_seconds;
        rep.baseline_max_rss_mb = base.process.max_rss_mb;
        rep.baseline_kernel_seconds = reference.outputs.kernel_seconds;

        if (on_progress) on_progress(eval, r, "submission");
        const std::string nonce = random_nonce();
        TrainerRun sub = run_trainer(ctx, submission, task, data, rep.seed, nonce);
        rep.submission_seconds = sub.process.wall_seconds;
        rep.submission_max_rss_mb = sub.process.max_rss_mb;
        rep.submission_cpu_seconds = sub.process.user_seconds + sub.process.sys_seconds;
        if (interrupted()) {
            remove_run(sub);
            eval.harness_error = "interrupted";  // what was verified so far stands
            return eval;
        }
        failure = run_failure(sub, "the submission's trainer");
        RunOutputs outputs;
        problems.clear();
        if (!failure.empty()) {
            rep.verification.reasons.push_back(failure);
        } else if (!read_outputs(sub, task, outputs, problems).empty()) {
            rep.verification.reasons = problems;
        } else {
            if (on_progress) on_progress(eval, r, "verify");
            reference.init_params.assign(num_parameters(config), 0.0f);
            init_params(reference.init_params.data(), config, rep.seed);
            reference.heldout =
                heldout_loss(task, reference.outputs.checkpoint.params, data.heldout);
            rep.verification = verify_run(task, reference, outputs, nonce, data.heldout);
            rep.submission_kernel_seconds = outputs.kernel_seconds;
        }
        remove_run(sub);
        // Runs are pinned to the allowed cores; more CPU time than they can give means the
        // trainer widened its affinity.
        const double allowed_cpu =
            ctx.threads * kCpuAllowanceFactor * rep.submission_seconds + kCpuAllowanceSeconds;
        if (sub.process.started && rep.submission_cpu_seconds > allowed_cpu) {
            char buf[200];
            snprintf(buf, sizeof(buf),
                     "the submission used %.2f CPU-seconds in %.2f s of wall time, more than the "
                     "%d cores it may use allow",
                     rep.submission_cpu_seconds, rep.submission_seconds, ctx.threads);
            rep.verification.reasons.push_back(buf);
        }
        if (!rep.verification.valid()) eval.valid = false;
        for (const std::string& reason : rep.verification.reasons) add_unique(eval.reasons, reason);
        for (const std::string& warning : rep.warnings) add_unique(eval.warnings, warning);
        eval.reps.push_back(std::move(rep));
        if (on_progress) on_progress(eval, r, "done");
        // An invalid submission stays invalid; more repetitions would only burn time.
        if (!eval.valid) break;
    }
    return eval;
}

}  // namespace trainopt
