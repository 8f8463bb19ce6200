#include "harness/paired_ci.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "contract/rng.h"
#include "harness/evaluation.h"
#include "harness/process.h"
#include "harness/scored_suite.h"
#include "harness/session.h"
#include "scoring/atomic_file.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

Status write_ci_reports(const CiOptions& options, const CiReport& report) {
    if (!options.json_path.empty()) {
        const std::string json =
            ci_report_to_json(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        if (Status written = write_file_atomic(options.json_path, json + "\n"); !written)
            return written;
    }
    if (!options.markdown_path.empty())
        return write_file_atomic(options.markdown_path, ci_report_to_markdown(report));
    return {};
}

// git with no configuration but the repository's own, no hooks, no pager, no prompts.
Result<ProcessOutcome> run_git(const std::vector<std::string>& args, const std::string& log) {
    SpawnSpec spec;
    spec.argv = {"/usr/bin/git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {"PATH=/usr/bin:/bin",          "HOME=/nonexistent",     "GIT_CONFIG_NOSYSTEM=1",
                "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C"};
    spec.output_path = log;
    spec.timeout_seconds = 120;
    return run_process(spec);
}

std::string first_line_of(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

}  // namespace

Result<std::string> resolve_previous(const std::string& previous, const std::string& current,
                                     const std::string& dest) {
    if (previous.rfind("git:", 0) != 0) return previous;
    const std::string rev = previous.substr(4);
    if (rev.empty() || rev[0] == '-' || rev.size() > 200)
        return failure("--previous git:REV needs a revision, not '" + terminal_safe_line(rev) +
                       "'");
    if (current == "baseline")
        return failure(
            "--previous git:REV exports the current submission's path at REV; the "
            "current submission is the baseline");
    std::error_code ec;
    const fs::path current_path = fs::absolute(current, ec);
    const fs::path dir =
        fs::is_directory(current_path, ec) ? current_path : current_path.parent_path();
    fs::create_directories(dest, ec);
    if (ec) return failure("cannot create " + dest + ": " + ec.message());
    const std::string log = dest + "/git.log";
    Result<ProcessOutcome> top = run_git({"-C", dir.string(), "rev-parse", "--show-toplevel"}, log);
    if (!top || !top->succeeded())
        return failure("--previous " + previous + ": " + current +
                       " is not in a git repository: " + file_tail(log, 300));
    const fs::path root = first_line_of(log);
    const fs::path relative = current_path.lexically_relative(root);
    if (relative.empty() || relative.string().rfind("..", 0) == 0)
        return failure("--previous " + previous + ": " + current + " is outside its repository");
    const std::string tar = dest + "/previous.tar";
    Result<ProcessOutcome> archived = run_git(
        {"-C", root.string(), "archive", "--format=tar", "-o", tar, rev, "--", relative.string()},
        log);
    if (!archived || !archived->succeeded())
        return failure("--previous " + previous + ": git archive failed: " + file_tail(log, 300));
    SpawnSpec untar;
    untar.argv = {"/bin/tar", "-x", "--no-same-owner", "--no-same-permissions", "-f", tar,
                  "-C",       dest};
    untar.env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
    untar.output_path = log;
    untar.timeout_seconds = 120;
    Result<ProcessOutcome> extracted = run_process(untar);
    if (!extracted || !extracted->succeeded())
        return failure("--previous " + previous +
                       ": cannot extract the revision: " + file_tail(log, 300));
    const std::string exported = dest + "/" + relative.string();
    if (!fs::exists(fs::symlink_status(exported, ec)))
        return failure("--previous " + previous + ": " + relative.string() +
                       " does not exist at that revision");
    return exported;
}

int ci_exit_code(const CiReport& report) {
    if (!report.invalid.empty()) return 3;
    switch (report.verdict) {
        case CiVerdict::no_regression:
            return 0;
        case CiVerdict::regression:
            return 4;
        case CiVerdict::undecided:
            return 5;
    }
    return 5;
}

namespace {

// The versions to compare, built and audited; a refusal is an error here (ci compares two
// versions that score, it does not judge one).
struct Versions {
    PreparedSubmission previous;
    PreparedSubmission current;
};

Result<PreparedSubmission> prepare_version(const std::string& which, const std::string& path,
                                           const ScoreOptions& base_options,
                                           const HarnessContext& ctx,
                                           const TrainerBuild& baseline) {
    ScoreOptions options = base_options;
    options.submission = path;
    spdlog::info("{} version: {}", which, terminal_safe_line(path));
    Result<PreparedSubmission> prepared = prepare_submission(options, ctx, baseline);
    if (!prepared) return failure("the " + which + " version: " + prepared.error());
    if (!prepared->rejected.empty())
        return failure("the " + which + " version is refused: " + prepared->rejected.front());
    return prepared;
}

// Why a verified round's repetition failed, if it did.
void note_invalid(const std::string& which, const std::string& task, const RepResult& rep,
                  CiReport& report) {
    for (const std::string& reason : rep.verification.reasons)
        report.invalid.push_back("the " + which + " version, task " + task + ": " + reason);
}

// The sequential test over the rounds so far, written into the report.
SequentialLook look_now(const std::vector<std::vector<double>>& wall,
                        const std::vector<std::vector<double>>& cpu, const CiOptions& options,
                        CiReport& report) {
    SequentialLook look = look_at_rounds(wall, options.test);
    const SequentialLook cpu_look = look_at_rounds(cpu, options.test);
    report.suite_wall = look.suite;
    for (size_t t = 0; t < report.tasks.size() && t < look.tasks.size(); t++) {
        report.tasks[t].wall = look.tasks[t];
        report.tasks[t].cpu = cpu_look.tasks[t];
        report.tasks[t].regressed = false;
    }
    for (size_t t : look.regressed_tasks) report.tasks[t].regressed = true;
    report.verdict = look.verdict;
    return look;
}

std::string percent(double fraction) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.1f%%", fraction * 100);
    return buf;
}

// One paragraph on the verdict and the noise floor the rounds measured.
std::string explain(const SequentialLook& look, const CiOptions& options, double round_seconds,
                    bool budget_spent) {
    const double allowance = options.test.max_slowdown;
    const std::string change = percent(std::expm1(look.suite.mean));
    switch (look.verdict) {
        case CiVerdict::regression:
            if (look.suite.low > std::log1p(allowance))
                return "REGRESSION: the suite is slower by " + change + "; even its lower bound (" +
                       percent(std::expm1(look.suite.low)) + ") exceeds the allowed " +
                       percent(allowance) + ".";
            return "REGRESSION: " + std::to_string(look.regressed_tasks.size()) +
                   " task(s) are slower than the allowed " + percent(allowance) +
                   " on their own (marked below), although the suite's mean change is " + change +
                   ".";
        case CiVerdict::no_regression:
            return "NO REGRESSION: the suite's change is " + change + " and its upper bound (" +
                   percent(std::expm1(look.suite.high)) + ") is within the allowed " +
                   percent(allowance) + ".";
        case CiVerdict::undecided:
            break;
    }
    const int needed = rounds_needed(look.suite.spread, options.test);
    std::string text = "UNDECIDED: the suite's change is " + change + ", bounds " +
                       percent(std::expm1(look.suite.low)) + " to " +
                       percent(std::expm1(look.suite.high)) + ", which straddle the allowed " +
                       percent(allowance) + ". ";
    text += "This machine's noise floor: one round's suite log-ratio varies by " +
            percent(look.suite.spread) + "; telling an unchanged version from a " +
            percent(allowance) + " slowdown needs about " + std::to_string(needed) + " rounds (" +
            std::to_string((int)std::ceil(needed * round_seconds)) + " s).";
    if (budget_spent && needed > options.test.max_rounds)
        text += " The machine is too noisy to decide at this allowance within " +
                std::to_string(options.test.max_rounds) +
                " rounds: run on a quieter machine, use longer tasks or allow a larger slowdown.";
    else if (budget_spent)
        text += " Raise --budget to decide, or the change is close to the allowance itself.";
    return text;
}

}  // namespace

Result<CiReport> run_paired_ci(const CiOptions& options) {
    const auto started = Clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
    if (!(options.test.max_slowdown > 0 && options.test.max_slowdown < 10))
        return failure("--max-slowdown must be in (0, 10)");
    if (!(options.test.alpha > 0 && options.test.alpha < 0.5))
        return failure("--alpha must be in (0, 0.5)");
    if (options.test.min_rounds < 2 || options.test.max_rounds < options.test.min_rounds ||
        options.test.max_rounds > 1000)
        return failure("--max-rounds must be between 3 and 1000");
    if (!(options.budget_seconds > 0)) return failure("--budget must be positive");
    if (!options.score.with_generated.empty())
        return failure("ci compares two versions on one suite; --with-generated is for score");

    Result<TrustedInputs> trusted = load_trusted_inputs();
    if (!trusted) return failure(trusted.error());
    Result<SandboxMode> sandbox = choose_sandbox(options.score);
    if (!sandbox) return failure(sandbox.error());
    Result<std::string> workdir = make_workdir(options.score);
    if (!workdir) return failure(workdir.error());
    WorkdirGuard guard{*workdir, options.score.keep_workdir};
    const std::string previous_dir = *workdir + "/previous";
    if (mkdir(previous_dir.c_str(), 0711) != 0 || chmod(previous_dir.c_str(), 0711) != 0)
        return failure("cannot create " + previous_dir);
    WorkdirGuard previous_guard{previous_dir, options.score.keep_workdir};
    Result<SuiteToScore> scored = load_suite_to_score(*trusted, options.score, *workdir);
    if (!scored) return failure(scored.error());
    Result<std::vector<int>> cpus = choose_cores(options.score.threads);
    if (!cpus) return failure(cpus.error());
    const HarnessContext ctx = make_context(options.score, *trusted, *sandbox, *workdir, *cpus);
    HarnessContext previous_ctx = ctx;
    previous_ctx.workdir = previous_dir;

    CiReport report;
    report.created_at = utc_now();
    report.current = terminal_safe_line(options.score.submission);
    report.previous = terminal_safe_line(options.previous);
    report.suite = scored->suite.name;
    report.threads = ctx.threads;
    report.sandbox = to_string(ctx.sandbox);
    report.seed = options.score.seed ? *options.score.seed : random_seed();
    report.test = options.test;
    report.budget_seconds = options.budget_seconds;
    report.warnings = trusted->warnings;
    for (const std::string& w : scored->warnings) report.warnings.push_back(w);
    if (ctx.sandbox == SandboxMode::none) report.warnings.push_back(kUnsandboxedWarning);

    Result<TrainerBuild> baseline = baseline_trainer(*trusted);
    if (!baseline) return failure(baseline.error());
    Result<std::string> previous_path =
        resolve_previous(options.previous, options.score.submission, *workdir + "/git-export");
    if (!previous_path) return failure(previous_path.error());
    Result<PreparedSubmission> previous =
        prepare_version("previous", *previous_path, options.score, previous_ctx, *baseline);
    if (!previous) return failure(previous.error());
    Result<PreparedSubmission> current =
        prepare_version("current", options.score.submission, options.score, ctx, *baseline);
    if (!current) return failure(current.error());
    report.previous_build = previous->build;
    report.current_build = current->build;
    for (const std::string& w : previous->warnings) report.warnings.push_back("previous: " + w);
    for (const std::string& w : current->warnings) report.warnings.push_back("current: " + w);

    const std::vector<TaskSpec>& tasks = scored->suite.tasks;
    std::vector<TaskData> data;
    for (const TaskSpec& task : tasks) {
        Result<TaskData> prepared = prepare_task_inputs(ctx, task);
        if (!prepared) return failure("task " + task.name + ": " + prepared.error());
        data.push_back(std::move(*prepared));
        CiTaskRuns runs;
        runs.name = task.name;
        report.tasks.push_back(runs);
    }

    // rounds[r][t] = log(current / previous) of task t in round r
    std::vector<std::vector<double>> wall_rounds, cpu_rounds;
    const std::vector<int> looks = look_schedule(options.test);
    Rng seeds(report.seed);
    double timed_rounds_seconds = 0;  // rounds after the first, which has the baseline
    bool budget_spent = false;
    SequentialLook look;
    report.setup_seconds = elapsed();
    for (int round = 0; round < options.test.max_rounds; round++) {
        const double mean_round = round > 1 ? timed_rounds_seconds / (round - 1) : 0;
        if (round > 0 && elapsed() + mean_round > options.budget_seconds) {
            budget_spent = true;
            break;
        }
        std::vector<double> wall(tasks.size()), cpu(tasks.size());
        const auto round_started = Clock::now();
        for (size_t t = 0; t < tasks.size(); t++) {
            const uint64_t seed = seeds.next_u64() >> 16;
            // A B, then B A: each version goes first as often as the other
            const bool previous_first = (round + t) % 2 == 0;
            const TrainerBuild& first = previous_first ? previous->trainer : current->trainer;
            const TrainerBuild& second = previous_first ? current->trainer : previous->trainer;
            double first_wall = 0, second_wall = 0, first_cpu = 0, second_cpu = 0;
            if (round == 0) {
                spdlog::info("[{}/{} {}] round 1: baseline, then both versions, verified", t + 1,
                             tasks.size(), tasks[t].name);
                Result<std::vector<RepResult>> verified =
                    run_verified_round(ctx, *baseline, {&first, &second}, tasks[t], data[t], seed);
                if (!verified) return failure("task " + tasks[t].name + ": " + verified.error());
                const RepResult& a = (*verified)[0];
                const RepResult& b = (*verified)[1];
                note_invalid(previous_first ? "previous" : "current", tasks[t].name, a, report);
                note_invalid(previous_first ? "current" : "previous", tasks[t].name, b, report);
                first_wall = a.submission_seconds, first_cpu = a.submission_cpu_seconds;
                second_wall = b.submission_seconds, second_cpu = b.submission_cpu_seconds;
            } else {
                Result<TimedRun> a = run_timed(ctx, first, tasks[t], data[t], seed);
                if (!a) return failure("task " + tasks[t].name + ": " + a.error());
                Result<TimedRun> b = run_timed(ctx, second, tasks[t], data[t], seed);
                if (!b) return failure("task " + tasks[t].name + ": " + b.error());
                for (const std::string& p : a->problems)
                    report.invalid.push_back(std::string("the ") +
                                             (previous_first ? "previous" : "current") +
                                             " version, task " + tasks[t].name + ": " + p);
                for (const std::string& p : b->problems)
                    report.invalid.push_back(std::string("the ") +
                                             (previous_first ? "current" : "previous") +
                                             " version, task " + tasks[t].name + ": " + p);
                first_wall = a->wall_seconds, first_cpu = a->cpu_seconds;
                second_wall = b->wall_seconds, second_cpu = b->cpu_seconds;
            }
            CiTaskRuns& runs = report.tasks[t];
            runs.seeds.push_back(seed);
            runs.previous_first.push_back(previous_first);
            const double previous_wall = previous_first ? first_wall : second_wall;
            const double current_wall = previous_first ? second_wall : first_wall;
            const double previous_cpu = previous_first ? first_cpu : second_cpu;
            const double current_cpu = previous_first ? second_cpu : first_cpu;
            runs.previous_seconds.push_back(previous_wall);
            runs.current_seconds.push_back(current_wall);
            runs.previous_cpu_seconds.push_back(previous_cpu);
            runs.current_cpu_seconds.push_back(current_cpu);
            wall[t] = std::log(std::max(current_wall, 1e-9) / std::max(previous_wall, 1e-9));
            cpu[t] = std::log(std::max(current_cpu, 1e-9) / std::max(previous_cpu, 1e-9));
            if (!report.invalid.empty()) break;
        }
        if (!report.invalid.empty()) break;  // nothing to compare: a version does not verify
        const double round_seconds =
            std::chrono::duration<double>(Clock::now() - round_started).count();
        report.round_seconds.push_back(round_seconds);
        if (round > 0) timed_rounds_seconds += round_seconds;
        wall_rounds.push_back(wall);
        cpu_rounds.push_back(cpu);
        report.rounds = (int)wall_rounds.size();
        report.elapsed_seconds = elapsed();
        const bool scheduled = std::find(looks.begin(), looks.end(), report.rounds) != looks.end();
        look = look_now(wall_rounds, cpu_rounds, options, report);
        spdlog::info("round {}: suite change {:+.1f}% (bounds {:+.1f}% to {:+.1f}%){}",
                     report.rounds, std::expm1(look.suite.mean) * 100,
                     std::expm1(look.suite.low) * 100, std::expm1(look.suite.high) * 100,
                     scheduled ? ", look: " + to_string(look.verdict) : "");
        (void)write_ci_reports(options, report);
        if (scheduled && look.verdict != CiVerdict::undecided) break;
        report.verdict = CiVerdict::undecided;  // only a scheduled look decides
    }
    report.elapsed_seconds = elapsed();
    if (report.invalid.empty()) {
        // the last look: a scheduled one, or the extra look when the budget ended the rounds
        // between two (planned_looks counts it)
        report.verdict = look.verdict;
        const double round_seconds =
            report.rounds > 1 ? timed_rounds_seconds / (report.rounds - 1) : report.elapsed_seconds;
        report.explanation = explain(look, options, round_seconds,
                                     budget_spent || report.rounds >= options.test.max_rounds);
    } else {
        report.explanation =
            "INVALID: a version does not train the same model (below); there is "
            "nothing to compare.";
    }
    report.complete = true;
    if (Status written = write_ci_reports(options, report); !written)
        return failure(written.error());
    return report;
}

}  // namespace trainopt
