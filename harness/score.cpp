#include "harness/score.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>

#include "harness/binary_audit.h"
#include "harness/build.h"
#include "harness/evaluation.h"
#include "harness/intake.h"
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
    for (const RepResult& rep : eval.reps) {
        t.seeds.push_back(rep.seed);
        t.baseline_seconds.push_back(rep.baseline_seconds);
        t.submission_seconds.push_back(rep.submission_seconds);
        const Comparison& c = rep.verification.comparison;
        t.max_loss_diff = std::max(t.max_loss_diff, c.max_loss_diff);
        t.max_heldout_diff = std::max(t.max_heldout_diff, c.heldout_diff);
        t.max_weight_distance = std::max(t.max_weight_distance, c.weight_distance);
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
            std::error_code ec;
            fs::remove_all(path, ec);
        }
    }
};

// Whether every directory above `dir` lets other users through.
bool reachable_by_others(const std::string& dir, std::string& error) {
    for (fs::path p = fs::path(dir).parent_path(); !p.empty(); p = p.parent_path()) {
        struct stat st;
        if (stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) {
            error =
                "builds (and runs without the sandbox) run as uid nobody and must reach the "
                "work directory, but " +
                p.string() + " does not let other users through: choose another --workdir";
            return false;
        }
        if (p == p.root_path()) break;
    }
    return true;
}

// Pins runs to the first ctx.threads cores this process may use.
bool pin_cores(HarnessContext& ctx, std::string& error) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        error = "cannot read this process's CPU affinity";
        return false;
    }
    if (ctx.threads <= 0) ctx.threads = CPU_COUNT(&allowed);
    for (int cpu = 0; cpu < CPU_SETSIZE && (int)ctx.cpus.size() < ctx.threads; cpu++) {
        if (CPU_ISSET(cpu, &allowed)) ctx.cpus.push_back(cpu);
    }
    if ((int)ctx.cpus.size() < ctx.threads) {
        error = "--threads " + std::to_string(ctx.threads) + " asks for more cores than the " +
                std::to_string(ctx.cpus.size()) + " this process may use";
        return false;
    }
    return true;
}

}  // namespace

int exit_code_for(const ScoreReport& report) {
    return report.verdict == Verdict::valid ? 0 : 3;
}

namespace {

ScoreOutcome score_unguarded(const ScoreOptions& options) {
    ScoreOutcome outcome;
    ScoreReport& report = outcome.report;
    // The pristine tree, baseline trainer and sandbox init this score rests on, checked against
    // the hashes compiled into trainopt (harness/trusted_inputs.h): if any changed since the
    // build, nothing is scored.
    const TrustedInputs trusted = load_trusted_inputs();
    if (!trusted.ok) {
        outcome.error = trusted.error;
        return outcome;
    }
    const std::string project_root = trusted.pristine_root;
    for (const std::string& w : trusted.warnings) report.warnings.push_back(w);

    Suite suite;
    bool builtin_suite = false;
    if (!load_scoring_suite(trusted, options.suite, suite, builtin_suite, outcome.error))
        return outcome;
    if (!builtin_suite) {
        report.warnings.push_back("CUSTOM SUITE: the tasks were read from " +
                                  fs::absolute(options.suite).string() +
                                  ", not from the suites built into trainopt; this is not an "
                                  "official score.");
        suite.name += " (not built in)";
    }
    // Each task's seed is the base seed plus its index in the whole suite, so a partial score
    // reproduces the same tasks' runs of a full one.
    std::vector<uint64_t> seed_offsets(suite.tasks.size());
    for (size_t i = 0; i < seed_offsets.size(); i++) seed_offsets[i] = i;
    if (!options.only_tasks.empty()) {
        std::vector<TaskSpec> chosen;
        std::vector<uint64_t> chosen_offsets;
        for (const std::string& name : options.only_tasks) {
            auto it = std::find_if(suite.tasks.begin(), suite.tasks.end(),
                                   [&](const TaskSpec& t) { return t.name == name; });
            if (it == suite.tasks.end()) {
                outcome.error =
                    "--task " + terminal_safe_line(name) + ": no such task in suite " + suite.name;
                return outcome;
            }
            if (std::find_if(chosen.begin(), chosen.end(),
                             [&](const TaskSpec& t) { return t.name == name; }) == chosen.end()) {
                chosen.push_back(*it);
                chosen_offsets.push_back((uint64_t)(it - suite.tasks.begin()));
            }
        }
        if (chosen.size() < suite.tasks.size()) {
            std::string names;
            for (const TaskSpec& t : chosen) names += (names.empty() ? "" : ", ") + t.name;
            report.warnings.push_back("PARTIAL SUITE: only " + names + " of suite " + suite.name +
                                      " were scored; this is not an official score.");
            suite.name += " (part: " + names + ")";
        }
        suite.tasks = std::move(chosen);
        seed_offsets = std::move(chosen_offsets);
    }
    if (options.reps < 1 || options.reps > 100) {
        outcome.error = "--reps must be between 1 and 100";
        return outcome;
    }

    HarnessContext ctx;
    ctx.project_root = project_root;
    ctx.sandbox_init = trusted.sandbox_init;
    ctx.threads = options.threads;  // 0: every core this process may use (pin_cores)
    ctx.timeout_seconds = options.timeout_seconds;
    ctx.max_memory_bytes = (size_t)options.max_memory_mb << 20;
    ctx.sandbox = options.disable_sandbox ? SandboxMode::none : detect_sandbox_mode();
    if (ctx.sandbox == SandboxMode::none) {
        if (options.require_sandbox) {
            outcome.error = "bubblewrap is not usable here and --require-sandbox was given";
            return outcome;
        }
        report.warnings.push_back(
            "UNSANDBOXED: bubblewrap is not usable on this machine; trainers ran with uid "
            "separation only (see docs/security.md). Do not trust this score for adversarial "
            "submissions.");
        spdlog::warn("{}", report.warnings.back());
    }

    // A fresh private directory: under /tmp, or under --workdir when given.
    const std::string parent = options.workdir.empty() ? "/tmp" : options.workdir;
    std::error_code ec;
    if (!options.workdir.empty()) fs::create_directories(parent, ec);
    std::string tmpl = parent + "/trainopt-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
        outcome.error = "cannot create a work directory under " + parent + ": " + strerror(errno);
        return outcome;
    }
    const std::string workdir = tmpl;
    // Traversable, not listable: the untrusted user (nobody) reaches the scratch tree it builds
    // in, and without the sandbox its own run directories, by name; so must every directory above.
    chmod(workdir.c_str(), 0711);
    if (untrusted_uid() >= 0 && !reachable_by_others(workdir, outcome.error)) {
        std::error_code ignored;
        fs::remove_all(workdir, ignored);
        return outcome;
    }
    ctx.workdir = workdir;
    WorkdirGuard guard{workdir, options.keep_workdir};
    if (!pin_cores(ctx, outcome.error)) return outcome;

    report.created_at = utc_now();
    report.submission = terminal_safe_line(options.submission);
    report.suite = suite.name;
    report.sandbox = to_string(ctx.sandbox);
    report.threads = ctx.threads;
    report.reps = options.reps;
    report.seed = options.seed ? *options.seed : random_seed();

    TrainerBuild baseline{trusted.baseline_trainer};
    if (!fs::exists(baseline.trainer_path)) {
        outcome.error = "the pristine baseline trainer " + baseline.trainer_path +
                        " is missing: build the project first";
        return outcome;
    }
    TrainerBuild submission = baseline;
    if (options.submission == "baseline") {
        report.submission_kind = "baseline";
    } else {
        Submission sub;
        if (!classify_submission(options.submission, sub, outcome.error)) return outcome;
        report.submission_kind = to_string(sub.kind);
        const std::string scratch = workdir + "/scratch";
        const std::string private_dir = workdir + "/private";
        if (mkdir(scratch.c_str(), 0711) != 0 || mkdir(private_dir.c_str(), 0711) != 0 ||
            chmod(scratch.c_str(), 0711) != 0 || chmod(private_dir.c_str(), 0711) != 0) {
            outcome.error = "cannot create the scratch directories in " + workdir;
            return outcome;
        }
        if (!copy_pristine_tree(project_root, scratch + "/src", outcome.error)) return outcome;
        std::vector<std::string> problems;
        spdlog::info("intake: applying {} {}", report.submission_kind,
                     terminal_safe_line(options.submission));
        // A refused submission gets a complete REJECTED report and no runs.
        auto reject = [&](const std::vector<std::string>& reasons) {
            report.complete = true;
            for (const std::string& reason : reasons) {
                report.rejected.push_back(reason);
                spdlog::error("rejected: {}", terminal_safe(reason));
            }
            Status written = write_reports(options, report);
            outcome.ok = written.has_value();
            if (!written) outcome.error = written.error();
            return outcome;
        };
        if (!apply_submission(sub, project_root, scratch + "/src", ctx.sandbox, problems)) {
            for (std::string& p : problems) p = "intake: " + p;
            return reject(problems);
        }
        spdlog::info("build: compiling the submission's trainer (sandbox: {})", report.sandbox);
        BuildResult build =
            build_trainer(scratch, private_dir, ctx.sandbox_init, ctx.sandbox, ctx.threads);
        if (interrupted()) {
            outcome.error = "interrupted during the build";
            return outcome;
        }
        if (!build.ok) return reject({"the submission does not build: " + build.error});
        spdlog::info("build: done in {:.1f} s", build.seconds);
        BinaryAudit audit = audit_trainer_binary(build.trainer_copy, private_dir, ctx.sandbox);
        for (const std::string& w : audit.warnings) report.warnings.push_back(w);
        if (!audit.problems.empty()) return reject(audit.problems);
        submission = {build.trainer_copy};
    }

    // The speed-of-light backstop's bound (scoring/report.h): the machine's FMA ceiling. Always
    // measured (well under a second), so verify applies the backstop too.
    report.fma_ceiling = measure_fma_ceiling(ctx.threads);
    spdlog::info("FMA ceiling: {:.1f} GFLOP/s ({}, {} threads)", report.fma_ceiling.gflops,
                 report.fma_ceiling.isa, report.fma_ceiling.threads);
    if (options.measure_peak) {
        report.peak_gflops = measure_peak_gflops(ctx.threads);
        spdlog::info("machine peak: {:.1f} GFLOP/s (OpenBLAS sgemm, {} threads)",
                     report.peak_gflops, ctx.threads);
    }

    const auto started = std::chrono::steady_clock::now();
    for (size_t i = 0; i < suite.tasks.size(); i++) {
        const TaskSpec& task = suite.tasks[i];
        const std::string label = fmt::format("[{}/{} {}]", i + 1, suite.tasks.size(), task.name);
        auto progress = [&](const TaskEvaluation& eval, int rep, const std::string& stage) {
            if (stage != "done") {
                spdlog::info("{} rep {}/{}: running {}", label, rep + 1, options.reps, stage);
                return;
            }
            const RepResult& r = eval.reps.back();
            std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
            spdlog::info(
                "{} rep {}/{}: baseline {:.2f} s, submission {:.3f} s ({:.2f}x), {} [{:.0f} s "
                "elapsed]",
                label, rep + 1, options.reps, r.baseline_seconds, r.submission_seconds,
                r.submission_seconds > 0 ? r.baseline_seconds / r.submission_seconds : 0.0,
                r.verification.valid() ? "verified" : "INVALID: " + r.verification.reasons.front(),
                elapsed.count());
            // keep a partial report on disk after every repetition
            ScoreReport partial = report;
            partial.tasks.push_back(task_report_of(eval));
            (void)write_reports(options, partial);
        };
        TaskEvaluation eval = evaluate_task(ctx, baseline, submission, task, options.reps,
                                            report.seed + seed_offsets[i], progress);
        if (!eval.harness_error.empty()) {
            outcome.error = "task " + task.name + ": " + eval.harness_error;
            // keep what was measured so far, this task's finished repetitions included
            if (!eval.reps.empty()) report.tasks.push_back(task_report_of(eval));
            (void)write_reports(options, report);
            return outcome;
        }
        report.tasks.push_back(task_report_of(eval));
    }
    report.complete = true;
    if (Status written = write_reports(options, report); !written) {
        outcome.error = written.error();
        return outcome;
    }
    outcome.ok = true;
    return outcome;
}

}  // namespace

ScoreOutcome run_score(const ScoreOptions& options) {
    // Whatever a hostile submission makes go wrong ends in an error, not a crash; the work
    // directory is removed while the exception unwinds.
    try {
        return score_unguarded(options);
    } catch (const std::exception& e) {
        ScoreOutcome failed;
        failed.error = std::string("internal error: ") + e.what();
        return failed;
    }
}

}  // namespace trainopt
