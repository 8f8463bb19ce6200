#include "harness/evaluation.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
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
#include "harness/baseline_cache.h"
#include "harness/replay.h"
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

constexpr const char* kInterrupted = "interrupted";

void add_unique(std::vector<std::string>& list, const std::string& item) {
    if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

std::string join_cpus(const std::vector<int>& cpus) {
    std::string out;
    for (int cpu : cpus) out += (out.empty() ? "" : ",") + std::to_string(cpu);
    return out;
}

// A fresh directory under `parent` with a random name, private to the harness.
Result<std::string> make_private_dir(const std::string& parent, mode_t mode) {
    const std::string path = parent + "/" + random_nonce().substr(0, 16);
    if (mkdir(path.c_str(), mode) != 0 || chmod(path.c_str(), mode) != 0)
        return failure("cannot create " + path + ": " + strerror(errno));
    return path;
}

// trainopt-sandbox-init's arguments: the run's limits and what to collect from its outputs (a
// segment's state.bin in place of final.ckpt).
std::vector<std::string> init_arguments(const HarnessContext& ctx, const TaskSpec& task,
                                        const std::string& out_dir_seen, bool segment,
                                        const ProfilerRequest* profiler) {
    const OutputCaps caps = output_caps(task);
    const std::string weights = segment ? "state.bin:" + std::to_string(caps.state_bin)
                                        : "final.ckpt:" + std::to_string(caps.final_ckpt);
    std::vector<std::string> args = {
        "--max-processes",    std::to_string(ctx.max_processes),
        "--max-memory-bytes", std::to_string(ctx.max_memory_bytes),
        "--max-file-bytes",   std::to_string(std::max(kMinFileBytes, 2 * caps.state_bin)),
        "--out-dir",          out_dir_seen,
        "--export-fd",        "3",
        "--collect",          "losses.csv:" + std::to_string(caps.losses_csv),
        "--collect",          weights,
        "--collect",          "meta.json:" + std::to_string(caps.meta_json)};
    if (profiler != nullptr) {
        args.insert(args.end(),
                    {"--collect", profiler->output + ":" + std::to_string(profiler->max_bytes)});
    }
    if (!ctx.cpus.empty()) args.insert(args.end(), {"--cpus", join_cpus(ctx.cpus)});
    return args;
}

size_t out_tmpfs_bytes(const TaskSpec& task, const ProfilerRequest* profiler) {
    const OutputCaps caps = output_caps(task);
    return caps.losses_csv + caps.state_bin + caps.meta_json + kOutputSlackBytes +
           (profiler != nullptr ? profiler->max_bytes : 0);
}

// Where a run finds its programs and files: fixed paths inside the sandbox; without it, host
// paths, with init started by path and told to drop privileges itself.
struct RunPaths {
    std::vector<std::string> init;
    std::string trainer;
    std::string task;
    std::string data;
    std::string out;
    std::string state;  // a segment's state to resume from; empty: none
};

// The command of a run: init with the run's limits, then the trainer with its arguments (under
// the profiler when one is asked for).
std::vector<std::string> run_command(const HarnessContext& ctx, const TaskSpec& task,
                                     const RunPaths& paths, uint64_t seed, const std::string& nonce,
                                     const SegmentRequest* segment,
                                     const ProfilerRequest* profiler) {
    std::vector<std::string> command = paths.init;
    for (const std::string& a : init_arguments(ctx, task, paths.out, segment != nullptr, profiler))
        command.push_back(a);
    command.push_back("--");
    if (profiler != nullptr)
        command.insert(command.end(), profiler->prefix.begin(), profiler->prefix.end());
    command.insert(command.end(), {paths.trainer, "--task", paths.task, "--data", paths.data,
                                   "--out", paths.out, "--seed", std::to_string(seed), "--nonce",
                                   nonce, "--threads", std::to_string(ctx.threads)});
    if (segment != nullptr) {
        command.insert(command.end(), {"--until", std::to_string(segment->until)});
        if (!paths.state.empty()) command.insert(command.end(), {"--resume", paths.state});
    }
    return command;
}

// Writes a segment's state file into the run directory, readable by the trainer (the
// directory itself is closed to it but for traversal without the sandbox).
Result<std::string> write_segment_state(const TrainerRun& run, const SegmentRequest& segment) {
    const std::string path = run.run_dir + "/resume-state.bin";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return failure("cannot create " + path + ": " + strerror(errno));
    const char* p = segment.state.data();
    size_t left = segment.state.size();
    while (left > 0) {
        const ssize_t n = write(fd, p, left);
        if (n <= 0) {
            close(fd);
            return failure("cannot write " + path + ": " + strerror(errno));
        }
        p += n;
        left -= (size_t)n;
    }
    fchmod(fd, 0644);
    close(fd);
    return path;
}

void close_all(const std::vector<int>& fds) {
    for (int fd : fds) close(fd);
}

// The descriptors handed to a run: the export directory (3), then, sandboxed, the inputs bwrap
// copies into the sandbox's memory (4..7), so no host path of theirs is visible inside. The
// fallback passes only the export directory.
Result<std::vector<int>> open_handed_descriptors(const HarnessContext& ctx,
                                                 const TrainerBuild& build, const TaskData& data,
                                                 const TrainerRun& run,
                                                 const std::string& state_path) {
    const bool boxed = ctx.sandbox == SandboxMode::bubblewrap;
    std::vector<std::string> handed = {run.export_dir, ctx.sandbox_init, build.trainer_path,
                                       data.task_file, data.train_dir + "/train.bin"};
    if (!state_path.empty()) handed.push_back(state_path);
    std::vector<int> fds;
    for (const std::string& path : handed) {
        const bool is_dir = fds.empty();
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
        if (fd < 0) {
            const std::string why = "cannot open " + path + ": " + strerror(errno);
            close_all(fds);
            return failure(why);
        }
        fds.push_back(fd);
        if (!boxed) break;
    }
    return fds;
}

// The run's private directory (log, exported outputs) under ctx.workdir.
Result<TrainerRun> make_run_directory(const HarnessContext& ctx) {
    const bool boxed = ctx.sandbox == SandboxMode::bubblewrap;
    const int uid = untrusted_uid();
    // Boxed, nothing untrusted needs to reach the run directory by path; without the sandbox the
    // trainer (uid nobody) must traverse it to its output directory, and no further.
    Result<std::string> dir = make_private_dir(ctx.workdir, boxed ? 0700 : 0711);
    if (!dir) return failure(dir.error());
    TrainerRun run;
    run.run_dir = *dir;
    run.log_path = run.run_dir + "/trainer.log";
    run.export_dir = run.run_dir + "/export";
    mkdir(run.export_dir.c_str(), 0700);
    // Boxed, init runs as the untrusted uid and writes the exports itself.
    if (boxed && uid >= 0) (void)!chown(run.export_dir.c_str(), (uid_t)uid, (gid_t)uid);
    return run;
}

// What trainopt-sandbox-init wrote about outputs it could not collect, one line each.
std::vector<std::string> read_collect_problems(const TrainerRun& run) {
    std::vector<std::string> problems;
    Result<std::string> text =
        read_file_beneath(run.export_dir, kCollectProblemsFile, {64 << 10, 10});
    if (!text) return problems;
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty()) problems.push_back(terminal_safe_line(line));
    }
    return problems;
}

}  // namespace

void remove_run(const TrainerRun& run) {
    std::error_code ec;
    if (!run.run_dir.empty()) fs::remove_all(run.run_dir, ec);
}

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

Result<TaskData> prepare_task_inputs(const HarnessContext& ctx, const TaskSpec& task) {
    Result<TokenSplit> split = make_task_data(task);
    if (!split) return failure(split.error());
    Result<std::string> inputs = make_private_dir(ctx.workdir, 0755);
    if (!inputs) return failure(inputs.error());
    TaskData data;
    data.train_dir = *inputs + "/data";
    data.task_file = *inputs + "/task.toml";
    if (mkdir(data.train_dir.c_str(), 0755) != 0 || chmod(data.train_dir.c_str(), 0755) != 0)
        return failure("cannot create " + data.train_dir);
    const std::string train_bin = data.train_dir + "/train.bin";
    if (Status written = write_tokens(train_bin, split->train, task.model.vocab_size); !written)
        return failure(written.error());
    chmod(train_bin.c_str(), 0644);
    std::error_code ec;
    fs::copy_file(task.file, data.task_file, ec);
    if (ec || chmod(data.task_file.c_str(), 0644) != 0)
        return failure("cannot copy the task file " + task.file + ": " + ec.message());
    data.train = std::move(split->train);
    data.heldout = std::move(split->heldout);
    return data;
}

Result<TrainerRun> run_trainer(const HarnessContext& ctx, const TrainerBuild& build,
                               const TaskSpec& task, const TaskData& data, uint64_t seed,
                               const std::string& nonce, const SegmentRequest* segment,
                               const ProfilerRequest* profiler) {
    const bool boxed = ctx.sandbox == SandboxMode::bubblewrap;
    const int uid = untrusted_uid();
    Result<TrainerRun> made = make_run_directory(ctx);
    if (!made) return failure(made.error());
    TrainerRun run = std::move(*made);
    std::string state_path;
    if (segment != nullptr && !segment->state.empty()) {
        Result<std::string> written = write_segment_state(run, *segment);
        if (!written) {
            remove_run(run);
            return failure(written.error());
        }
        state_path = *written;
    }
    Result<std::vector<int>> fds = open_handed_descriptors(ctx, build, data, run, state_path);
    if (!fds) {
        remove_run(run);
        return failure(fds.error());
    }

    SandboxSpec sandbox;
    sandbox.mode = ctx.sandbox;
    SpawnSpec spawn;
    RunPaths paths;
    if (boxed) {
        sandbox.data_files = {{4, kSandboxInit, 0555},
                              {5, kSandboxTrainer, 0555},
                              {6, kSandboxTask, 0444},
                              {7, std::string(kSandboxData) + "/train.bin", 0444}};
        if (!state_path.empty()) sandbox.data_files.push_back({8, kSandboxState, 0444});
        sandbox.tmpfs = {{kSandboxOut, out_tmpfs_bytes(task, profiler)}};
        sandbox.cwd = kSandboxOut;
        paths = {{kSandboxInit}, kSandboxTrainer, kSandboxTask,
                 kSandboxData,   kSandboxOut,     state_path.empty() ? "" : kSandboxState};
        spawn.run_as_uid = uid;
        spawn.cwd = "/";
    } else {
        const std::string out_dir = run.run_dir + "/out";
        mkdir(out_dir.c_str(), 0700);
        if (uid >= 0) (void)!chown(out_dir.c_str(), (uid_t)uid, (gid_t)uid);
        paths = {{ctx.sandbox_init, "--drop-privileges"},
                 build.trainer_path,
                 data.task_file,
                 data.train_dir,
                 out_dir,
                 state_path};
        spawn.cwd = out_dir;
    }
    sandbox.command = run_command(ctx, task, paths, seed, nonce, segment, profiler);
    sandbox.env = trainer_environment();
    spawn.argv = sandbox_argv(sandbox);
    spawn.env = sandbox.env;
    spawn.output_path = run.log_path;
    spawn.timeout_seconds = ctx.timeout_seconds;
    spawn.pass_fds = *fds;
    Result<ProcessOutcome> process = run_process(spawn);
    close_all(*fds);
    if (!process) {
        remove_run(run);
        return failure(process.error());
    }
    run.process = *process;
    const bool exited = !run.process.timed_out && run.process.term_signal == 0;
    run.left_processes = exited && run.process.exit_code == kLeftoverExit;
    run.init_failed = exited && run.process.exit_code == kInitError;
    run.collect_problems = read_collect_problems(run);
    return run;
}

Status check_run_finished(const TrainerRun& run, const std::string& who) {
    if (run.init_failed) {
        return failure(who +
                       " could not be started in the sandbox: " + file_tail(run.log_path, 600));
    }
    if (run.left_processes)
        return failure(who + " left processes running after it exited (they were killed)");
    if (!run.process.succeeded()) {
        std::string tail = file_tail(run.log_path, 600);
        return failure(who + " " + run.process.describe() + (tail.empty() ? "" : ": " + tail));
    }
    return {};
}

namespace {

// A finished run's collected outputs, with the problems of collecting them first.
CollectedOutputs collect_outputs(const TrainerRun& run, const TaskSpec& task) {
    if (!run.collect_problems.empty()) return {RunOutputs{}, run.collect_problems};
    return read_run_outputs(run.export_dir, task);
}

}  // namespace

Result<BaselineRun> run_baseline(const HarnessContext& ctx, const TrainerBuild& baseline,
                                 const TaskSpec& task, const TaskData& data, uint64_t seed) {
    const std::string who = "the baseline trainer";
    const std::string nonce = random_nonce();
    Result<TrainerRun> run = run_trainer(ctx, baseline, task, data, seed, nonce);
    if (!run) return failure(who + " did not start: " + run.error());
    BaselineRun base;
    Status usable = check_run_finished(*run, who);
    if (usable) {
        CollectedOutputs collected = collect_outputs(*run, task);
        if (!collected.problems.empty()) {
            usable = failure("the baseline's outputs are unusable: " + collected.problems.front());
        } else if (collected.outputs.nonce != nonce) {
            usable = failure("the baseline's meta.json lacks the nonce");
        }
        base.reference.outputs = std::move(collected.outputs);
    }
    const std::string log = file_tail(run->log_path, 2000);
    remove_run(*run);
    if (!usable) return failure(usable.error() + (log.empty() ? "" : "; its log: " + log));
    base.seconds = run->process.wall_seconds;
    base.max_rss_mb = run->process.max_rss_mb;
    return base;
}

namespace {

// The baseline's outputs for the seed: from ctx.baseline_cache when it holds them for exactly
// these inputs, else from a run (stored in the cache afterwards). Problems of the cache itself
// are warnings: the baseline then runs as without it. Fails as run_baseline does.
Result<BaselineRun> obtain_baseline(const HarnessContext& ctx, const TrainerBuild& baseline,
                                    const TaskSpec& task, const TaskData& data, uint64_t seed) {
    if (ctx.baseline_cache == nullptr) return run_baseline(ctx, baseline, task, data, seed);
    Result<BaselineKeyInputs> inputs =
        baseline_key_inputs(data.task_file, data.train, seed, ctx.threads);
    if (!inputs) {
        spdlog::warn("baseline cache not used: {}", inputs.error());
        return run_baseline(ctx, baseline, task, data, seed);
    }
    const std::string key = baseline_cache_key(*inputs);
    BaselineLookup found = lookup_baseline(*ctx.baseline_cache, key, task);
    if (found.hit) {
        spdlog::info(
            "baseline: reused its reference outputs of seed {} from the baseline cache "
            "({}, stored {}); not run, not timed",
            seed, key.substr(0, 12), found.created_at);
        BaselineRun base;
        base.cached = true;
        base.reference.outputs = std::move(*found.hit);
        return base;
    }
    if (!found.distrusted.empty()) {
        spdlog::warn(
            "baseline cache: the entry {} was not trusted and was removed ({}); running "
            "the baseline again",
            key.substr(0, 12), found.distrusted);
    }
    Result<BaselineRun> base = run_baseline(ctx, baseline, task, data, seed);
    if (!base || interrupted()) return base;
    Result<bool> stored =
        store_baseline(*ctx.baseline_cache, key, task, seed, base->reference.outputs);
    if (!stored)
        spdlog::warn("baseline cache: not stored: {}", stored.error());
    else if (*stored)
        spdlog::info("baseline: reference outputs of seed {} cached as {}", seed,
                     key.substr(0, 12));
    return base;
}

// Why the submission's run used more CPU time than its pinned cores can give (it widened its
// affinity), if it did.
Status check_cpu_time(const HarnessContext& ctx, const RepResult& rep) {
    const double allowed_cpu =
        ctx.threads * kCpuAllowanceFactor * rep.submission_seconds + kCpuAllowanceSeconds;
    if (rep.submission_cpu_seconds <= allowed_cpu) return {};
    char buf[200];
    snprintf(buf, sizeof(buf),
             "the submission used %.2f CPU-seconds in %.2f s of wall time, more than the %d cores "
             "it may use allow",
             rep.submission_cpu_seconds, rep.submission_seconds, ctx.threads);
    return failure(buf);
}

// Why the submission's run held more resident memory than the memory limit, if it did: memory
// the per-process data limit does not see (file-backed mappings, memory shared through a tmpfs)
// still shows in the peak resident set.
Status check_memory(const HarnessContext& ctx, const RepResult& rep) {
    const double memory_cap_mb = (double)(ctx.max_memory_bytes >> 20);
    if (ctx.max_memory_bytes == 0 || rep.submission_max_rss_mb <= memory_cap_mb) return {};
    char buf[200];
    snprintf(buf, sizeof(buf),
             "the submission's trainer held %.0f MB resident, more than the %.0f MB memory limit",
             rep.submission_max_rss_mb, memory_cap_mb);
    return failure(buf);
}

}  // namespace

Result<RepResult> run_submission(const HarnessContext& ctx, const TrainerBuild& submission,
                                 const TaskSpec& task, const TaskData& data, uint64_t seed,
                                 BaselineRun& base,
                                 const std::function<void(const std::string&)>& announce) {
    RepResult rep;
    rep.seed = seed;
    rep.baseline_cached = base.cached;
    rep.baseline_seconds = base.seconds;
    rep.baseline_max_rss_mb = base.max_rss_mb;
    rep.baseline_kernel_seconds = base.reference.outputs.kernel_seconds;
    const std::string who = "the submission's trainer";
    const std::string nonce = random_nonce();
    Result<TrainerRun> run = run_trainer(ctx, submission, task, data, seed, nonce);
    if (!run) {
        if (interrupted()) return failure(kInterrupted);
        rep.verification.reasons.push_back(who + " did not start: " + run.error());
        return rep;
    }
    rep.submission_seconds = run->process.wall_seconds;
    rep.submission_max_rss_mb = run->process.max_rss_mb;
    rep.submission_cpu_seconds = run->process.user_seconds + run->process.sys_seconds;
    if (interrupted()) {
        remove_run(*run);
        return failure(kInterrupted);
    }
    if (Status finished = check_run_finished(*run, who); !finished) {
        rep.verification.reasons.push_back(finished.error());
    } else if (CollectedOutputs collected = collect_outputs(*run, task);
               !collected.problems.empty()) {
        rep.verification.reasons = collected.problems;
    } else {
        announce("verify");
        const double verify_started = monotonic_seconds();
        const GPTConfig config = gpt_config_of(task);
        ReferenceRun& reference = base.reference;
        if (reference.init_params.empty()) {  // a batch verifies many runs against one reference
            reference.init_params.assign(num_parameters(config), 0.0f);
            init_params(reference.init_params.data(), config, seed);
            reference.heldout =
                heldout_loss(task, reference.outputs.checkpoint.params, data.heldout);
        }
        rep.verification = verify_run(task, reference, collected.outputs, nonce, data.heldout);
        rep.submission_kernel_seconds = collected.outputs.kernel_seconds;
        if (task.verify.check == CheckKind::local && rep.verification.valid()) {
            remove_run(*run);
            run->run_dir.clear();
            announce("replay");
            // the windows are drawn now, after the timed run
            Result<ReplayCheck> replay = replay_and_check_windows(ctx, submission, task, data, seed,
                                                                  collected.outputs, random_seed());
            if (!replay) return failure(kInterrupted);
            rep.verification.comparison.windows = replay->windows;
            for (const std::string& reason : replay->reasons)
                rep.verification.reasons.push_back(reason);
        }
        rep.verify_seconds = monotonic_seconds() - verify_started;
    }
    remove_run(*run);
    if (Status cpu = check_cpu_time(ctx, rep); !cpu)
        rep.verification.reasons.push_back(cpu.error());
    if (Status memory = check_memory(ctx, rep); !memory)
        rep.verification.reasons.push_back(memory.error());
    return rep;
}

void record_repetition(TaskEvaluation& eval, RepResult rep) {
    if (!rep.verification.valid()) eval.valid = false;
    for (const std::string& reason : rep.verification.reasons) add_unique(eval.reasons, reason);
    for (const std::string& warning : rep.warnings) add_unique(eval.warnings, warning);
    eval.reps.push_back(std::move(rep));
}

std::vector<uint64_t> repetition_seeds(uint64_t base_seed, int reps) {
    Rng rng(base_seed);
    std::vector<uint64_t> seeds;
    for (int r = 0; r < reps; r++) seeds.push_back(rng.next_u64() >> 16);
    return seeds;
}

Status evaluate_task(const HarnessContext& ctx, const TrainerBuild& baseline,
                     const TrainerBuild& submission, int reps, uint64_t base_seed,
                     const RepCallback& on_progress, TaskEvaluation& eval) {
    const TaskSpec& task = eval.task;
    const double data_started = monotonic_seconds();
    Result<TaskData> data = prepare_task_inputs(ctx, task);
    eval.data_seconds = monotonic_seconds() - data_started;
    if (!data) {
        eval.valid = false;
        return failure(data.error());
    }
    const std::vector<uint64_t> seeds = repetition_seeds(base_seed, reps);
    for (int r = 0; r < reps; r++) {
        auto announce = [&](const std::string& stage) {
            if (on_progress) on_progress(eval, r, stage);
        };
        const uint64_t seed = seeds[(size_t)r];
        announce("baseline");
        Result<BaselineRun> base = obtain_baseline(ctx, baseline, task, *data, seed);
        if (interrupted()) return failure(kInterrupted);  // what was verified so far stands
        if (!base) {
            eval.valid = false;
            return failure(base.error());
        }
        announce("submission");
        Result<RepResult> rep = run_submission(ctx, submission, task, *data, seed, *base, announce);
        if (!rep) return failure(rep.error());  // interrupted: what was verified so far stands
        record_repetition(eval, std::move(*rep));
        announce("done");
        // An invalid submission stays invalid; more repetitions would only burn time.
        if (!eval.valid) break;
    }
    return {};
}

Result<std::vector<RepResult>> run_verified_round(const HarnessContext& ctx,
                                                  const TrainerBuild& baseline,
                                                  const std::vector<const TrainerBuild*>& trainers,
                                                  const TaskSpec& task, const TaskData& data,
                                                  uint64_t seed) {
    Result<BaselineRun> base = run_baseline(ctx, baseline, task, data, seed);
    if (interrupted()) return failure(kInterrupted);
    if (!base) return failure(base.error());
    std::vector<RepResult> results;
    for (const TrainerBuild* trainer : trainers) {
        Result<RepResult> rep =
            run_submission(ctx, *trainer, task, data, seed, *base, [](const std::string&) {});
        if (!rep) return failure(rep.error());
        results.push_back(std::move(*rep));
    }
    return results;
}

Result<TimedRun> run_timed(const HarnessContext& ctx, const TrainerBuild& build,
                           const TaskSpec& task, const TaskData& data, uint64_t seed) {
    const std::string nonce = random_nonce();
    Result<TrainerRun> run = run_trainer(ctx, build, task, data, seed, nonce);
    if (!run) return failure("the trainer did not start: " + run.error());
    TimedRun timed;
    timed.wall_seconds = run->process.wall_seconds;
    timed.cpu_seconds = run->process.user_seconds + run->process.sys_seconds;
    if (Status finished = check_run_finished(*run, "the trainer"); !finished) {
        timed.problems.push_back(finished.error());
    } else {
        CollectedOutputs collected = collect_outputs(*run, task);
        timed.problems = collected.problems;
        if (timed.problems.empty() && collected.outputs.nonce != nonce)
            timed.problems.push_back("the trainer's meta.json lacks the run's nonce");
    }
    remove_run(*run);
    if (interrupted()) return failure(kInterrupted);
    return timed;
}

}  // namespace trainopt
