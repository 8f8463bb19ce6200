#include "harness/score.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iterator>

#include "harness/evaluation.h"
#include "harness/safe_file.h"
#include "harness/score_report.h"
#include "harness/scored_suite.h"
#include "harness/session.h"
#include "harness/trusted_inputs.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"
#include "tasks/task_spec.h"

namespace trainopt {

namespace fs = std::filesystem;

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

namespace {

// Where a repetition's losses went furthest from the reference's, and its per-tensor distances
// of the final weights when it is the one to show: an invalid repetition (the last), else the
// one with the largest weight distance.
void add_loss_and_tensors(const RepResult& rep, TaskReport& t, double& shown_distance) {
    const Comparison& c = rep.verification.comparison;
    if (c.worst_step >= 0 && (t.worst_loss_step < 0 || c.max_loss_diff > t.max_loss_diff))
        t.worst_loss_step = c.worst_step;
    if (!rep.verification.valid() || c.weight_distance > shown_distance) {
        shown_distance = c.weight_distance;
        t.first_loss_step_over = c.first_step_over;
        t.first_loss_diff_over = c.first_diff_over;
        t.tensors.clear();
        for (const TensorDistance& d : c.tensors) {
            t.tensors.push_back({kParamTensorNames[d.slice.tensor], d.slice.layer, d.rel,
                                 gradient_kernel_of(d.slice.tensor)});
        }
    }
}

}  // namespace

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
    double shown_distance = -1;  // the weight distance of the repetition t.tensors comes from
    for (const RepResult& rep : eval.reps) {
        add_loss_and_tensors(rep, t, shown_distance);
        t.seeds.push_back(rep.seed);
        // a reused reference was not timed: the task has no baseline time and no speedup
        if (rep.baseline_cached)
            t.baseline_cached = true;
        else
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
            t.min_window_adam_step = t.windows_checked == 1
                                         ? w.min_adam_step
                                         : std::min(t.min_window_adam_step, w.min_adam_step);
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

namespace {

// ---- the runs ----

// A task's share of the score's wall time: its data, its timed runs and their verification.
void add_phases(const TaskEvaluation& eval, PhaseSeconds& phases) {
    phases.task_data += eval.data_seconds;
    for (const RepResult& rep : eval.reps) {
        phases.timed_runs += rep.baseline_seconds + rep.submission_seconds;
        phases.verification += rep.verify_seconds;
    }
}

using Clock = std::chrono::steady_clock;

void log_repetition(const std::string& label, const TaskEvaluation& eval, int rep, int reps,
                    Clock::time_point started) {
    const RepResult& r = eval.reps.back();
    std::chrono::duration<double> elapsed = Clock::now() - started;
    if (r.baseline_cached) {
        spdlog::info(
            "{} rep {}/{}: baseline outputs cached, submission {:.3f} s, {} [{:.0f} s "
            "elapsed]",
            label, rep + 1, reps, r.submission_seconds,
            r.verification.valid() ? "verified" : "INVALID: " + r.verification.reasons.front(),
            elapsed.count());
        return;
    }
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
        auto task_report = [&](const TaskEvaluation& eval) {
            TaskReport t = task_report_of(eval);
            t.suite = scored.task_suites[i];
            return t;
        };
        auto progress = [&](const TaskEvaluation& eval, int rep, const std::string& stage) {
            if (stage != "done") {
                spdlog::info("{} rep {}/{}: running {}", label, rep + 1, options.reps, stage);
                return;
            }
            log_repetition(label, eval, rep, options.reps, started);
            // keep a partial report on disk after every repetition
            ScoreReport partial = report;
            partial.tasks.push_back(task_report(eval));
            (void)write_reports(options, partial);
        };
        TaskEvaluation eval;
        eval.task = tasks[i];
        Status evaluated = evaluate_task(ctx, baseline, submission, options.reps,
                                         report.seed + scored.seed_offsets[i], progress, eval);
        if (!evaluated) {
            // keep what was measured so far, this task's finished repetitions included
            if (!eval.reps.empty()) report.tasks.push_back(task_report(eval));
            add_phases(eval, report.phases);
            (void)write_reports(options, report);
            return failure("task " + tasks[i].name + ": " + evaluated.error());
        }
        report.tasks.push_back(task_report(eval));
        add_phases(eval, report.phases);
    }
    return {};
}

}  // namespace

int exit_code_for(const ScoreReport& report) {
    return report.verdict == Verdict::valid ? 0 : 3;
}

// A report with what is known before anything runs, and the warnings so far.
ScoreReport start_report(const ScoreOptions& options, const TrustedInputs& trusted,
                         const SuiteToScore& scored, const HarnessContext& ctx) {
    ScoreReport report;
    report.warnings = trusted.warnings;
    for (const std::string& w : scored.warnings) report.warnings.push_back(w);
    if (ctx.sandbox == SandboxMode::none) report.warnings.push_back(kUnsandboxedWarning);
    report.command = options.command;
    report.created_at = utc_now();
    report.submission = terminal_safe_line(options.submission);
    report.suite = scored.suite.name;
    report.suites = scored.suites;
    report.generated_suite = scored.generated_suite;
    report.generated_tasks = scored.generated_tasks;
    report.sandbox = to_string(ctx.sandbox);
    report.threads = ctx.threads;
    report.reps = options.reps;
    report.seed = options.seed ? *options.seed : random_seed();
    report.suite_hash = suite_hash(scored.suite);  // finalize_report recomputes it when complete
    report.machine = identify_machine();
    return report;
}

namespace {

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

// The folder that holds the shipped references (submissions/ of a trainopt checkout): the one
// given, or the source checkout a development build runs from. An install has none.
Result<std::string> locate_references(const ScoreOptions& options, const TrustedInputs& trusted) {
    std::string dir = options.references_dir;
    if (dir.empty()) {
        if (trusted.installed)
            return failure(
                "--references: an installed trainopt has no submissions/ (it holds no "
                "submission's code); give --references-dir DIR, the submissions/ folder of a "
                "trainopt checkout");
        dir = (fs::path(trusted.pristine_root) / "submissions").string();
    }
    for (const char* folder : kReferenceFolders) {
        const fs::path path = fs::path(dir) / folder;
        std::error_code ec;
        if (!fs::is_directory(path, ec))
            return failure("--references: no reference submission " + path.string() +
                           " (--references-dir names the submissions/ folder of a trainopt "
                           "checkout, which holds blas-tbb/ and expert/)");
    }
    return dir;
}

Result<ScoreReport> score_unguarded(const ScoreOptions& options);

// Scores each shipped reference as the submission was scored (suite, seeds, repetitions,
// threads, the same generated suite) and adds its headline to the report.
Status score_references(const ScoreOptions& options, const std::string& dir, ScoreReport& report) {
    for (size_t i = 0; i < std::size(kReferenceRoles); i++) {
        ScoreOptions ref = options;
        ref.submission = (fs::path(dir) / kReferenceFolders[i]).string();
        ref.seed = report.seed;
        ref.references = false;
        ref.json_path.clear();
        ref.markdown_path.clear();
        ref.html_path.clear();
        if (!options.with_generated.empty()) ref.with_generated = report.generated_suite;
        spdlog::info("--references: scoring the {} {} with base seed {}", kReferenceRoles[i],
                     terminal_safe_line(ref.submission), report.seed);
        Result<ScoreReport> scored = score_unguarded(ref);
        if (!scored)
            return failure("--references: the " + std::string(kReferenceRoles[i]) + " " +
                           ref.submission + ": " + scored.error());
        report.references.push_back(
            {kReferenceRoles[i], ref.submission, scored->verdict, scored->summary});
    }
    return {};
}

Result<ScoreReport> score_unguarded(const ScoreOptions& options) {
    const double started = monotonic_seconds();
    // The pristine tree, baseline trainer and sandbox init this score rests on, checked against
    // the hashes compiled into trainopt (harness/trusted_inputs.h): if any changed since the
    // build, nothing is scored.
    Result<TrustedInputs> trusted = load_trusted_inputs();
    if (!trusted) return failure(trusted.error());
    std::string references_dir;
    if (options.references) {  // known before anything runs
        Result<std::string> located = locate_references(options, *trusted);
        if (!located) return failure(located.error());
        references_dir = *located;
    }
    if (options.reps < 1 || options.reps > 100) return failure("--reps must be between 1 and 100");
    if (is_generated_suite_name(options.suite)) {
        // a malformed name fails before anything is created
        if (Result<GeneratedSuiteName> name = parse_generated_suite_name(options.suite); !name)
            return failure(name.error());
    }
    if (!options.with_generated.empty()) {
        if (Result<GeneratedSuiteName> name = companion_suite_name(options.with_generated); !name)
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
    // opened before the context that points to it, so it outlives every run
    const std::optional<CacheDir> baseline_cache = open_baseline_cache_for(options, *sandbox);
    HarnessContext ctx = make_context(options, *trusted, *sandbox, *workdir, *cpus);
    if (baseline_cache) ctx.baseline_cache = &*baseline_cache;
    ScoreReport report = start_report(options, *trusted, *scored, ctx);

    Result<TrainerBuild> baseline = baseline_trainer(*trusted);
    if (!baseline) return failure(baseline.error());
    const double build_started = monotonic_seconds();
    report.phases.setup = build_started - started;
    Result<PreparedSubmission> submission = prepare_submission(options, ctx, *baseline);
    if (!submission) return failure(submission.error());
    report.phases.build = monotonic_seconds() - build_started;
    report.phases.total = monotonic_seconds() - started;
    report.submission_kind = submission->kind;
    report.build = submission->build;
    for (const std::string& w : submission->warnings) report.warnings.push_back(w);
    if (!submission->rejected.empty()) return reject(options, report, submission->rejected);

    const double machine_started = monotonic_seconds();
    const MachinePeaks peaks = measure_machine(ctx.threads, options.measure_peak);
    report.phases.machine = monotonic_seconds() - machine_started;
    report.fma_ceiling = peaks.fma_ceiling;
    report.peak_gflops = peaks.sgemm_gflops;
    Status evaluated =
        evaluate_suite(options, ctx, *baseline, submission->trainer, *scored, report);
    if (!evaluated) return failure(evaluated.error());
    report.complete = true;
    report.phases.total = monotonic_seconds() - started;
    if (options.references) {
        if (Status written = write_reports(options, report); !written)
            return failure(written.error());
        if (Status scored = score_references(options, references_dir, report); !scored)
            return failure(scored.error());
    }
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
