#include "harness/score.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>

#include "harness/binary_audit.h"
#include "harness/build.h"
#include "harness/evaluation.h"
#include "harness/intake.h"
#include "harness/suite_generator.h"
#include "harness/trusted_inputs.h"
#include "scoring/machine_peak.h"
#include "scoring/untrusted_text.h"
#include "tasks/task_spec.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

std::string utc_now() {
    std::time_t now = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return buf;
}

// Finalizes the report and writes every report file asked for.
Status write_reports(const ScoreOptions& options, ScoreReport& report) {
    finalize_report(report);
    if (!options.json_path.empty()) {
        const std::string json =
            report_to_json(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        if (Status written = write_file_atomic(options.json_path, json + "\n"); !written)
            return written;
    }
    if (!options.markdown_path.empty()) {
        if (Status written = write_file_atomic(options.markdown_path, report_to_markdown(report));
            !written)
            return written;
    }
    if (!options.html_path.empty())
        return write_file_atomic(options.html_path, report_to_html(report));
    return {};
}

TaskReport task_report_of(const TaskEvaluation& eval) {
    TaskReport t;
    t.name = eval.task.name;
    t.hot_spot = eval.task.hot_spot;
    t.valid = eval.valid;
    t.reasons = eval.reasons;
    t.warnings = eval.warnings;
    t.steps = eval.task.train.steps;
    t.step_gflop = training_step_flops(eval.task) / 1e9;
    t.check = eval.task.verify.check == CheckKind::local ? "local" : "trajectory";
    t.spec_hash = task_spec_hash(eval.task);
    for (const RepResult& rep : eval.reps) {
        t.seeds.push_back(rep.seed);
        t.baseline_seconds.push_back(rep.baseline_seconds);
        t.submission_seconds.push_back(rep.submission_seconds);
        const Comparison& c = rep.verification.comparison;
        t.max_loss_diff = std::max(t.max_loss_diff, c.max_loss_diff);
        t.max_heldout_diff = std::max(t.max_heldout_diff, c.heldout_diff);
        t.max_weight_distance = std::max(t.max_weight_distance, c.weight_distance);
        for (const WindowDeviation& w : c.windows) {
            t.windows_checked++;
            t.max_window_loss_diff = std::max(t.max_window_loss_diff, w.max_loss_diff);
            t.max_window_state_rel = std::max(t.max_window_state_rel, w.state_rel());
            t.max_window_tensor_rel = std::max(t.max_window_tensor_rel, w.tensor_rel);
        }
        const double unmeasured = std::nan("");
        t.baseline_final_loss.push_back(c.compared ? c.final_loss_reference : unmeasured);
        t.submission_final_loss.push_back(c.compared ? c.final_loss_submission : unmeasured);
        t.baseline_heldout_loss.push_back(c.compared ? c.heldout_reference : unmeasured);
        t.submission_heldout_loss.push_back(c.compared ? c.heldout_submission : unmeasured);
        t.baseline_peak_rss_mb = std::max(t.baseline_peak_rss_mb, rep.baseline_max_rss_mb);
        t.submission_peak_rss_mb = std::max(t.submission_peak_rss_mb, rep.submission_max_rss_mb);
        t.baseline_kernel_seconds = rep.baseline_kernel_seconds;
        t.submission_kernel_seconds = rep.submission_kernel_seconds;
    }
    return t;
}

// Removes the private work directory when the score is done (unless asked to keep it).
struct WorkdirGuard {
    std::string path;
    bool keep;
    ~WorkdirGuard() {
        if (!keep && !path.empty()) {
            // the scratch tree's tmpfs (cap_directory_size) first, or its mount point stays busy
            umount2((path + "/scratch").c_str(), MNT_DETACH);
            std::error_code ec;
            fs::remove_all(path, ec);
        }
    }
};

// ---- the suite ----

// The tasks to score, each with its seed offset: the task's index in the whole suite, so a
// partial score reproduces the same tasks' runs of a full one.
struct SuiteToScore {
    Suite suite;
    std::vector<uint64_t> seed_offsets;
    std::vector<std::string> warnings;  // not an official score: a custom or partial suite
};

// Narrows the suite to the tasks named by --task (each once, in the order given).
Status select_tasks(const std::vector<std::string>& names, SuiteToScore& scored) {
    Suite& suite = scored.suite;
    std::vector<TaskSpec> chosen;
    std::vector<uint64_t> chosen_offsets;
    for (const std::string& name : names) {
        auto it = std::find_if(suite.tasks.begin(), suite.tasks.end(),
                               [&](const TaskSpec& t) { return t.name == name; });
        if (it == suite.tasks.end())
            return failure("--task " + terminal_safe_line(name) + ": no such task in suite " +
                           suite.name);
        if (std::find_if(chosen.begin(), chosen.end(),
                         [&](const TaskSpec& t) { return t.name == name; }) == chosen.end()) {
            chosen.push_back(*it);
            chosen_offsets.push_back((uint64_t)(it - suite.tasks.begin()));
        }
    }
    if (chosen.size() < suite.tasks.size()) {
        std::string listed;
        for (const TaskSpec& t : chosen) listed += (listed.empty() ? "" : ", ") + t.name;
        scored.warnings.push_back("PARTIAL SUITE: only " + listed + " of suite " + suite.name +
                                  " were scored; this is not an official score.");
        suite.name += " (part: " + listed + ")";
    }
    suite.tasks = std::move(chosen);
    scored.seed_offsets = std::move(chosen_offsets);
    return {};
}

// A generated suite (harness/suite_generator.h): drawn from its seed, sized to this machine and
// calibrated now, its task files under the work directory.
Result<Suite> generate_suite_to_score(const ScoreOptions& options, const std::string& workdir) {
    Result<GeneratedSuiteName> name = parse_generated_suite_name(options.suite);
    if (!name) return failure(name.error());
    GenerateOptions generate;
    generate.name = *name;
    if (!options.generator_ranges.empty()) {
        Result<GeneratorRanges> ranges = load_generator_ranges(options.generator_ranges);
        if (!ranges) return failure(ranges.error());
        generate.ranges = *ranges;
    }
    generate.out_dir = workdir + "/generated";
    generate.progress = [](const std::string& line) { spdlog::info("generating: {}", line); };
    spdlog::info("generating suite {}: drawing, sizing and calibrating {} tasks",
                 generated_suite_name(*name), name->tasks);
    Result<GeneratedSuite> generated = generate_suite(generate);
    if (!generated) return failure(generated.error());
    return std::move(generated->suite);
}

Result<SuiteToScore> load_suite_to_score(const TrustedInputs& trusted, const ScoreOptions& options,
                                         const std::string& workdir) {
    SuiteToScore scored;
    if (is_generated_suite_name(options.suite)) {
        Result<Suite> generated = generate_suite_to_score(options, workdir);
        if (!generated) return failure(generated.error());
        scored.suite = std::move(*generated);
        for (size_t i = 0; i < scored.suite.tasks.size(); i++) scored.seed_offsets.push_back(i);
        if (!options.only_tasks.empty()) {
            if (Status selected = select_tasks(options.only_tasks, scored); !selected)
                return failure(selected.error());
        }
        return scored;
    }
    Result<ScoringSuite> loaded = load_scoring_suite(trusted, options.suite);
    if (!loaded) return failure(loaded.error());
    scored.suite = std::move(loaded->suite);
    if (!loaded->builtin) {
        scored.warnings.push_back("CUSTOM SUITE: the tasks were read from " +
                                  fs::absolute(options.suite).string() +
                                  ", not from the suites built into trainopt; this is not an "
                                  "official score.");
        scored.suite.name += " (not built in)";
    }
    for (size_t i = 0; i < scored.suite.tasks.size(); i++) scored.seed_offsets.push_back(i);
    if (!options.only_tasks.empty()) {
        if (Status selected = select_tasks(options.only_tasks, scored); !selected)
            return failure(selected.error());
    }
    return scored;
}

// ---- where runs happen ----

// The sandbox runs use: bubblewrap when it works here, else the flagged fallback (refused with
// --require-sandbox).
Result<SandboxMode> choose_sandbox(const ScoreOptions& options) {
    const SandboxMode mode = options.disable_sandbox ? SandboxMode::none : detect_sandbox_mode();
    if (mode == SandboxMode::none && options.require_sandbox)
        return failure("bubblewrap is not usable here and --require-sandbox was given");
    return mode;
}

constexpr const char* kUnsandboxedWarning =
    "UNSANDBOXED: bubblewrap is not usable on this machine; trainers ran with uid separation only "
    "(see docs/security.md). Do not trust this score for adversarial submissions.";

// Fails unless every directory above `dir` lets other users through.
Status check_reachable_by_others(const std::string& dir) {
    for (fs::path p = fs::path(dir).parent_path(); !p.empty(); p = p.parent_path()) {
        struct stat st;
        if (stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) {
            return failure(
                "builds (and runs without the sandbox) run as uid nobody and must reach the "
                "work directory, but " +
                p.string() + " does not let other users through: choose another --workdir");
        }
        if (p == p.root_path()) break;
    }
    return {};
}

// A fresh private work directory: under /tmp, or under --workdir when given.
Result<std::string> make_workdir(const ScoreOptions& options) {
    const std::string parent = options.workdir.empty() ? "/tmp" : options.workdir;
    std::error_code ec;
    if (!options.workdir.empty()) fs::create_directories(parent, ec);
    std::string workdir = parent + "/trainopt-XXXXXX";
    if (mkdtemp(workdir.data()) == nullptr)
        return failure("cannot create a work directory under " + parent + ": " + strerror(errno));
    // Traversable, not listable: the untrusted user (nobody) reaches the scratch tree it builds
    // in, and without the sandbox its own run directories, by name; so must every directory above.
    chmod(workdir.c_str(), 0711);
    if (untrusted_uid() >= 0) {
        if (Status reachable = check_reachable_by_others(workdir); !reachable) {
            std::error_code ignored;
            fs::remove_all(workdir, ignored);
            return failure(reachable.error());
        }
    }
    return workdir;
}

// The cores runs are pinned to: the first `threads` this process may use (0: all of them).
Result<std::vector<int>> choose_cores(int threads) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
        return failure("cannot read this process's CPU affinity");
    if (threads <= 0) threads = CPU_COUNT(&allowed);
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE && (int)cpus.size() < threads; cpu++) {
        if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
    }
    if ((int)cpus.size() < threads) {
        return failure("--threads " + std::to_string(threads) + " asks for more cores than the " +
                       std::to_string(cpus.size()) + " this process may use");
    }
    return cpus;
}

// ---- the submission ----

// The pristine baseline trainer, which every repetition runs first.
Result<TrainerBuild> baseline_trainer(const TrustedInputs& trusted) {
    if (!fs::exists(trusted.baseline_trainer)) {
        return failure("the pristine baseline trainer " + trusted.baseline_trainer +
                       " is missing: build the project first");
    }
    return TrainerBuild{trusted.baseline_trainer};
}

// Everything a submission's build writes (its scratch tree: sources and build tree) fits in this;
// the expert's takes about 60 MB.
constexpr size_t kScratchMaxBytes = (size_t)4 << 30;

// The submission's trainer, or why the submission is refused.
struct PreparedSubmission {
    std::string kind;  // patch, overlay, workspace or baseline
    TrainerBuild trainer;
    std::vector<std::string>
        warnings;  // a check that could not run: the disk cap, the binary audit
    std::vector<std::string> rejected;  // non-empty: refused by intake, build or audit; no runs
};

// Intake, sandboxed build and binary audit of the submission, in the work directory's scratch
// and private directories. "baseline" is the pristine trainer itself. Fails when the harness
// cannot go on (an unknown submission path, the work directory, an interrupt).
Result<PreparedSubmission> prepare_submission(const ScoreOptions& options,
                                              const HarnessContext& ctx,
                                              const TrainerBuild& baseline) {
    PreparedSubmission prepared;
    if (options.submission == "baseline") {
        prepared.kind = "baseline";
        prepared.trainer = baseline;
        return prepared;
    }
    Result<Submission> submission = classify_submission(options.submission);
    if (!submission) return failure(submission.error());
    prepared.kind = to_string(submission->kind);
    const std::string scratch = ctx.workdir + "/scratch";
    const std::string private_dir = ctx.workdir + "/private";
    if (mkdir(scratch.c_str(), 0711) != 0 || mkdir(private_dir.c_str(), 0711) != 0 ||
        chmod(scratch.c_str(), 0711) != 0 || chmod(private_dir.c_str(), 0711) != 0)
        return failure("cannot create the scratch directories in " + ctx.workdir);
    if (Status capped = cap_directory_size(scratch, kScratchMaxBytes); !capped) {
        prepared.warnings.push_back("the build's disk use is not capped (" + capped.error() +
                                    "): a build could fill the disk under " + ctx.workdir);
        spdlog::warn("{}", prepared.warnings.back());
    }
    if (Status copied = copy_pristine_tree(ctx.project_root, scratch + "/src"); !copied)
        return failure(copied.error());

    spdlog::info("intake: applying {} {}", prepared.kind, terminal_safe_line(options.submission));
    std::vector<std::string> problems =
        apply_submission(*submission, ctx.project_root, scratch + "/src", ctx.sandbox);
    if (!problems.empty()) {
        for (const std::string& p : problems) prepared.rejected.push_back("intake: " + p);
        return prepared;
    }
    spdlog::info("build: compiling the submission's trainer (sandbox: {})", to_string(ctx.sandbox));
    Result<BuiltTrainer> built =
        build_trainer(scratch, private_dir, ctx.sandbox_init, ctx.sandbox, ctx.threads);
    if (interrupted()) return failure("interrupted during the build");
    if (!built) {
        prepared.rejected.push_back("the submission does not build: " + built.error());
        return prepared;
    }
    spdlog::info("build: done in {:.1f} s", built->seconds);
    BinaryAudit audit = audit_trainer_binary(built->trainer_copy, private_dir, ctx.sandbox);
    for (const std::string& w : audit.warnings) prepared.warnings.push_back(w);
    prepared.rejected = audit.problems;
    prepared.trainer = {built->trainer_copy};
    return prepared;
}

// ---- the machine ----

struct MachinePeaks {
    FmaCeiling fma_ceiling;   // the speed-of-light backstop's bound (scoring/report.h)
    double sgemm_gflops = 0;  // the speed-of-light column; 0 when not measured
};

// The FMA ceiling is always measured (well under a second), so verify applies the backstop
// too; the sgemm peak only when asked.
MachinePeaks measure_machine(int threads, bool measure_sgemm) {
    MachinePeaks peaks;
    peaks.fma_ceiling = measure_fma_ceiling(threads);
    spdlog::info("FMA ceiling: {:.1f} GFLOP/s ({}, {} threads)", peaks.fma_ceiling.gflops,
                 peaks.fma_ceiling.isa, peaks.fma_ceiling.threads);
    if (measure_sgemm) {
        peaks.sgemm_gflops = measure_peak_gflops(threads);
        spdlog::info("machine peak: {:.1f} GFLOP/s (OpenBLAS sgemm, {} threads)",
                     peaks.sgemm_gflops, threads);
    }
    return peaks;
}

// ---- the runs ----

using Clock = std::chrono::steady_clock;

void log_repetition(const std::string& label, const TaskEvaluation& eval, int rep, int reps,
                    Clock::time_point started) {
    const RepResult& r = eval.reps.back();
    std::chrono::duration<double> elapsed = Clock::now() - started;
    spdlog::info(
        "{} rep {}/{}: baseline {:.2f} s, submission {:.3f} s ({:.2f}x), {} [{:.0f} s elapsed]",
        label, rep + 1, reps, r.baseline_seconds, r.submission_seconds,
        r.submission_seconds > 0 ? r.baseline_seconds / r.submission_seconds : 0.0,
        r.verification.valid() ? "verified" : "INVALID: " + r.verification.reasons.front(),
        elapsed.count());
}

// Runs every task of the suite and adds it to the report, rewriting the report files after
// every repetition. Fails when a task gives no score; its finished repetitions are kept in the
// report and its files.
Status evaluate_suite(const ScoreOptions& options, const HarnessContext& ctx,
                      const TrainerBuild& baseline, const TrainerBuild& submission,
                      const SuiteToScore& scored, ScoreReport& report) {
    const std::vector<TaskSpec>& tasks = scored.suite.tasks;
    const auto started = Clock::now();
    for (size_t i = 0; i < tasks.size(); i++) {
        const std::string label = fmt::format("[{}/{} {}]", i + 1, tasks.size(), tasks[i].name);
        auto progress = [&](const TaskEvaluation& eval, int rep, const std::string& stage) {
            if (stage != "done") {
                spdlog::info("{} rep {}/{}: running {}", label, rep + 1, options.reps, stage);
                return;
            }
            log_repetition(label, eval, rep, options.reps, started);
            // keep a partial report on disk after every repetition
            ScoreReport partial = report;
            partial.tasks.push_back(task_report_of(eval));
            (void)write_reports(options, partial);
        };
        TaskEvaluation eval;
        eval.task = tasks[i];
        Status evaluated = evaluate_task(ctx, baseline, submission, options.reps,
                                         report.seed + scored.seed_offsets[i], progress, eval);
        if (!evaluated) {
            // keep what was measured so far, this task's finished repetitions included
            if (!eval.reps.empty()) report.tasks.push_back(task_report_of(eval));
            (void)write_reports(options, report);
            return failure("task " + tasks[i].name + ": " + evaluated.error());
        }
        report.tasks.push_back(task_report_of(eval));
    }
    return {};
}

}  // namespace

int exit_code_for(const ScoreReport& report) {
    return report.verdict == Verdict::valid ? 0 : 3;
}

namespace {

HarnessContext make_context(const ScoreOptions& options, const TrustedInputs& trusted,
                            SandboxMode sandbox, const std::string& workdir,
                            const std::vector<int>& cpus) {
    HarnessContext ctx;
    ctx.project_root = trusted.pristine_root;
    ctx.sandbox_init = trusted.sandbox_init;
    ctx.sandbox = sandbox;
    ctx.workdir = workdir;
    ctx.threads = (int)cpus.size();  // --threads, or every core this process may use
    ctx.cpus = cpus;
    ctx.timeout_seconds = options.timeout_seconds;
    ctx.max_memory_bytes = (size_t)options.max_memory_mb << 20;
    return ctx;
}

// A report with what is known before anything runs, and the warnings so far.
ScoreReport start_report(const ScoreOptions& options, const TrustedInputs& trusted,
                         const SuiteToScore& scored, const HarnessContext& ctx) {
    ScoreReport report;
    report.warnings = trusted.warnings;
    for (const std::string& w : scored.warnings) report.warnings.push_back(w);
    if (ctx.sandbox == SandboxMode::none) report.warnings.push_back(kUnsandboxedWarning);
    report.created_at = utc_now();
    report.submission = terminal_safe_line(options.submission);
    report.suite = scored.suite.name;
    report.sandbox = to_string(ctx.sandbox);
    report.threads = ctx.threads;
    report.reps = options.reps;
    report.seed = options.seed ? *options.seed : random_seed();
    report.suite_hash = suite_hash(scored.suite);  // finalize_report recomputes it when complete
    report.machine = identify_machine();
    return report;
}

// A refused submission gets a complete REJECTED report and no runs.
Result<ScoreReport> reject(const ScoreOptions& options, ScoreReport report,
                           const std::vector<std::string>& reasons) {
    report.complete = true;
    for (const std::string& reason : reasons) {
        report.rejected.push_back(reason);
        spdlog::error("rejected: {}", terminal_safe(reason));
    }
    if (Status written = write_reports(options, report); !written) return failure(written.error());
    return report;
}

Result<ScoreReport> score_unguarded(const ScoreOptions& options) {
    // The pristine tree, baseline trainer and sandbox init this score rests on, checked against
    // the hashes compiled into trainopt (harness/trusted_inputs.h): if any changed since the
    // build, nothing is scored.
    Result<TrustedInputs> trusted = load_trusted_inputs();
    if (!trusted) return failure(trusted.error());
    if (options.reps < 1 || options.reps > 100) return failure("--reps must be between 1 and 100");
    if (is_generated_suite_name(options.suite)) {
        // a malformed name fails before anything is created
        if (Result<GeneratedSuiteName> name = parse_generated_suite_name(options.suite); !name)
            return failure(name.error());
    }
    Result<SandboxMode> sandbox = choose_sandbox(options);
    if (!sandbox) return failure(sandbox.error());
    if (*sandbox == SandboxMode::none) spdlog::warn("{}", kUnsandboxedWarning);
    Result<std::string> workdir = make_workdir(options);
    if (!workdir) return failure(workdir.error());
    WorkdirGuard guard{*workdir, options.keep_workdir};
    Result<SuiteToScore> scored = load_suite_to_score(*trusted, options, *workdir);
    if (!scored) return failure(scored.error());
    Result<std::vector<int>> cpus = choose_cores(options.threads);
    if (!cpus) return failure(cpus.error());
    const HarnessContext ctx = make_context(options, *trusted, *sandbox, *workdir, *cpus);
    ScoreReport report = start_report(options, *trusted, *scored, ctx);

    Result<TrainerBuild> baseline = baseline_trainer(*trusted);
    if (!baseline) return failure(baseline.error());
    Result<PreparedSubmission> submission = prepare_submission(options, ctx, *baseline);
    if (!submission) return failure(submission.error());
    report.submission_kind = submission->kind;
    for (const std::string& w : submission->warnings) report.warnings.push_back(w);
    if (!submission->rejected.empty()) return reject(options, report, submission->rejected);

    const MachinePeaks peaks = measure_machine(ctx.threads, options.measure_peak);
    report.fma_ceiling = peaks.fma_ceiling;
    report.peak_gflops = peaks.sgemm_gflops;
    Status evaluated =
        evaluate_suite(options, ctx, *baseline, submission->trainer, *scored, report);
    if (!evaluated) return failure(evaluated.error());
    report.complete = true;
    if (Status written = write_reports(options, report); !written) return failure(written.error());
    return report;
}

}  // namespace

Result<ScoreReport> run_score(const ScoreOptions& options) {
    // Whatever a hostile submission makes go wrong ends in an error, not a crash; the work
    // directory is removed while the exception unwinds.
    try {
        return score_unguarded(options);
    } catch (const std::exception& e) {
        return failure(std::string("internal error: ") + e.what());
    }
}

}  // namespace trainopt
