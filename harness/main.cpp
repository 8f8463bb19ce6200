// trainopt: score CPU training optimizations against the naive baseline.
//
// clang-format off
//   trainopt score SUBMISSION [--suite S] [--reps R] [--seed N] [--json F] [--md F] [--html F]
//                  [--references [--references-dir DIR]]   next to the example and the expert
//   trainopt verify SUBMISSION [--suite S]           correctness only: one repetition
//                  (S: built-in name, generated:SEED[:N] with [--generator F], or a directory)
//   trainopt check SUBMISSION [--task T] [--steps N] quick check of N steps of one task: PASS or
//                                                    FAIL, not the official verification
//   trainopt baseline [--suite S] [--reps R]         time the pristine baseline against itself
//   trainopt profile SUBMISSION --task T [--suite S] [--no-sample]
//                                                    per-kernel time beside the baseline's, and
//                                                    the top functions when perf can sample
//   trainopt ci SUBMISSION --against previous.json --max-slowdown P
//   trainopt compare A.json B.json [--max-slowdown P] [--md F] [--json F]
//   trainopt history DB [--suite S] [--task T] [--submission X] [--md F] [--html F]
//   trainopt history add DB REPORT.json [--commit REV]   (score and ci take --history DB too)
//   trainopt batch [SUBMISSION...] [--dir D] [--list F] --out OUT [--retime-minutes M] [--slurm]
//                                                    many submissions, one set of references
//   trainopt leaderboard DB [--batch OUT] [--md F] [--html F] [--sort COLUMN]
//   trainopt workspace init DIR                      an editable copy plus TASK.md
//   trainopt tasks list [--suite S]
//   trainopt data TASK.toml --out DIR                write train.bin and val.bin
//   trainopt report JSON [--md F] [--html F]         re-render a saved report
//   trainopt eval CHECKPOINT --task T.toml [--json]  held-out and training loss of a checkpoint
//   trainopt calibrate SUITE [--seeds N] [--task T] [--json F] [--write-tolerances DIR]
//                      [--from-json F]...
//                                                    measure and recommend each task's check
// clang-format on
//
// Exit codes: 0 success (VALID, PASS), 1 error, 2 usage, 3 submission INVALID, REJECTED or FAIL,
// 4 (ci) significant regression.
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/batch_command.h"
#include "harness/calibrate.h"
#include "harness/check.h"
#include "harness/checkpoint_eval.h"
#include "harness/cli_error.h"
#include "harness/compare_command.h"
#include "harness/history_command.h"
#include "harness/intake.h"
#include "harness/leaderboard_command.h"
#include "harness/paired_ci.h"
#include "harness/process.h"
#include "harness/profile.h"
#include "harness/score.h"
#include "harness/suite_generator.h"
#include "harness/trusted_inputs.h"
#include "scoring/regression.h"
#include "scoring/untrusted_text.h"
#include "tasks/data.h"
#include "tasks/task_spec.h"

using namespace trainopt;
namespace fs = std::filesystem;

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitRefused = 3;  // calibrate: a task's classes are not separated
constexpr int kExitInvalid = 3;  // check: FAIL, as verify's INVALID or REJECTED
constexpr int kExitRegression = 4;

// Everything printed here may carry untrusted text (a submission's file name or log tail, a
// saved report's contents), so it all goes through terminal_safe() (docs/security.md,
// "Untrusted text"). safe() is for a value printed inline.
std::string safe(const std::string& text) {
    return terminal_safe_line(text);
}

// terminal_safe(text) with continuation lines indented, so that a multi-line message (a
// compiler output tail) cannot pass for a line of trainopt's own.
void print_summary(const ScoreReport& r) {
    // the plain-text rendering is sanitized already; this keeps the terminal safe regardless
    printf("\n%s", terminal_safe(report_to_text(r)).c_str());
    fflush(stdout);
}

// The %* flag of the log pattern: the message through safe_indented().
class SafeMessageFlag : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        const std::string text =
            safe_indented(std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(text.data(), text.data() + text.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<SafeMessageFlag>();
    }
};

void use_safe_log_pattern() {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SafeMessageFlag>('*').set_pattern("[%H:%M:%S] %^%l%$ %*");
    spdlog::set_formatter(std::move(formatter));
}

// A number of seconds or minutes that must be finite and at least `least` (CLI11's Range lets
// NaN through, and a NaN or non-positive timeout would mean no kill at all).
CLI::Validator finite_at_least(double least) {
    return CLI::Validator(
        [least](std::string& text) -> std::string {
            double value = 0;
            if (!CLI::detail::lexical_cast(text, value) || !std::isfinite(value) || value < least)
                return fmt::format("must be a finite number of at least {:g}", least);
            return "";
        },
        fmt::format("FINITE>={:g}", least));
}

// Where and how trainers run: the cores, limits, work directory and sandbox.
void add_run_options(CLI::App* cmd, ScoreOptions& o) {
    cmd->add_option("--threads", o.threads, "cores a trainer may use (default: all)");
    cmd->add_option("--timeout", o.timeout_seconds, "seconds before a trainer run is killed")
        ->capture_default_str()
        ->check(finite_at_least(1));
    cmd->add_option("--max-memory-mb", o.max_memory_mb,
                    "data-segment cap of every trainer process, MiB")
        ->capture_default_str()
        ->check(CLI::Range(64, 1 << 20));
    cmd->add_option("--workdir", o.workdir, "create the private work directory under this one");
    cmd->add_flag("--keep-workdir", o.keep_workdir, "do not delete the temporary work directory");
    cmd->add_flag("--require-sandbox", o.require_sandbox, "fail instead of running unsandboxed");
    cmd->add_flag(
        "--no-sandbox", o.disable_sandbox,
        "run without bubblewrap, as on a machine without it (testing; flagged in reports)");
}

// What a suite-wide command scores: the suite (built-in, generated or a directory) and the base
// seed. For score, verify, baseline, ci and batch.
void add_suite_options(CLI::App* cmd, ScoreOptions& o, std::optional<uint64_t>& seed) {
    cmd->add_option("--suite", o.suite,
                    "a built-in suite (default, edge, test, text, text-test), generated:SEED[:N] "
                    "(N tasks drawn, sized and calibrated now) or a directory of task files (not "
                    "official)")
        ->capture_default_str();
    cmd->add_option("--generator", o.generator_ranges,
                    "a TOML file whose [generator] section sets the ranges of a generated suite");
    cmd->add_option("--seed", seed, "base seed (default: a fresh random seed)");
}

// The suite, the run options and what a single score adds: a companion generated suite, some
// tasks only, the report files.
void add_score_options(CLI::App* cmd, ScoreOptions& o, std::optional<uint64_t>& seed) {
    add_suite_options(cmd, o, seed);
    cmd->add_option("--with-generated", o.with_generated,
                    "also score a generated suite next to --suite, side by side with a "
                    "generalization ratio: N tasks from a seed drawn now, or generated:SEED[:N]");
    cmd->add_option("--task", o.only_tasks,
                    "score only this task of the suite (repeatable; not an official score)");
    add_run_options(cmd, o);
    cmd->add_option("--json", o.json_path, "write the JSON report here");
    cmd->add_option("--md", o.markdown_path, "write the Markdown report here");
    cmd->add_option("--html", o.html_path, "write the HTML report here");
}

// The build cache (harness/build_cache.h): for the commands that build a submission.
void add_build_cache_options(CLI::App* cmd, ScoreOptions& o) {
    cmd->add_option("--build-cache", o.build_cache.dir,
                    "keep and reuse built trainers in this directory (default: "
                    "$XDG_CACHE_HOME/trainopt/builds or ~/.cache/trainopt/builds)");
    cmd->add_flag_function(
        "--no-build-cache", [&o](int64_t) { o.build_cache.enabled = false; },
        "build the submission's trainer even when the build cache holds it, and store nothing");
}

// Incremental builds (harness/incremental.h): for the agent's loop, `check` and `verify`.
void add_incremental_options(CLI::App* cmd, ScoreOptions& o) {
    cmd->add_flag_function(
        "--no-incremental", [&o](int64_t) { o.incremental.enabled = false; },
        "build the trainer from scratch, without the workspace's compile cache");
    cmd->add_flag("--clear-incremental", o.incremental.clear,
                  "discard the workspace's compile cache first, then build and keep a new one");
    cmd->add_option("--incremental-dir", o.incremental.dir,
                    "keep the workspaces' compile caches in this directory (default: "
                    "$XDG_CACHE_HOME/trainopt/incremental or ~/.cache/trainopt/incremental)");
}

// The baseline cache (harness/baseline_cache.h): for the commands with a fixed seed.
void add_baseline_cache_options(CLI::App* cmd, ScoreOptions& o) {
    cmd->add_option("--baseline-cache", o.baseline_cache.dir,
                    "keep and reuse the baseline's reference outputs in this directory (default: "
                    "$XDG_CACHE_HOME/trainopt/baselines or ~/.cache/trainopt/baselines)");
    cmd->add_flag_function(
        "--no-baseline-cache", [&o](int64_t) { o.baseline_cache.enabled = false; },
        "run the baseline even when the baseline cache holds its outputs, and store nothing");
}

// score and ci --history DB [--commit REV]: where to append the finished score.
struct HistoryOption {
    std::string db;  // empty: no history
    std::string commit;
};

Status record_history(const HistoryOption& history, const ScoreReport& report) {
    if (history.db.empty()) return {};
    return record_in_history(history.db, report, run_commit(history.commit));
}

int run_and_report(const ScoreOptions& options, const HistoryOption& history) {
    Result<ScoreReport> report = run_score(options);
    if (!report) return fail(report.error());
    print_summary(*report);
    if (!options.json_path.empty()) printf("JSON report: %s\n", safe(options.json_path).c_str());
    if (!options.html_path.empty()) printf("HTML report: %s\n", safe(options.html_path).c_str());
    if (Status recorded = record_history(history, *report); !recorded)
        return fail(recorded.error());
    return exit_code_for(*report);
}

int profile(const ProfileOptions& options) {
    Result<ProfileReport> report = run_profile(options);
    if (!report) return fail(report.error());
    printf("\n%s", terminal_safe(profile_to_text(*report)).c_str());
    fflush(stdout);
    return profile_exit_code(*report);
}

// Writes the agent-facing documents compiled into trainopt into the workspace, naming this
// trainopt in the commands they give.
Status write_workspace_documents(const std::string& dir) {
    for (const EmbeddedFile& doc : workspace_documents()) {
        const fs::path path = fs::path(dir) / doc.path;
        std::error_code ec;
        fs::create_directories(path.parent_path(), ec);
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << workspace_document_text(doc, own_command());
        if (!out.flush()) return failure("cannot write " + path.string());
    }
    return {};
}

int workspace_init(const std::string& dir) {
    if (fs::exists(dir) && !fs::is_empty(dir)) return fail(dir + " exists and is not empty");
    // the verified pristine tree (harness/trusted_inputs.h), and only the agent-facing documents
    // compiled into trainopt: nothing about other submissions or their results
    Result<TrustedInputs> trusted = load_trusted_inputs();
    if (!trusted) return fail(trusted.error());
    if (Status copied = copy_pristine_tree(trusted->pristine_root, dir); !copied)
        return fail(copied.error());
    if (Status written = write_workspace_documents(dir); !written) return fail(written.error());
    std::ofstream(dir + "/" + kWorkspaceMarker)
        << "trainopt workspace; edit baseline/ and kernels/ only\n";
    const std::string trainopt = safe(own_command());
    printf(
        "workspace ready in %s\nread %s/TASK.md, edit baseline/ and kernels/, then run:\n"
        "  %s verify %s\n  %s score %s\n",
        safe(dir).c_str(), safe(dir).c_str(), trainopt.c_str(), safe(dir).c_str(), trainopt.c_str(),
        safe(dir).c_str());
    return 0;
}

int check(const CheckOptions& options) {
    Result<CheckReport> report = run_check(options);
    if (!report) return fail(report.error());
    if (!report->usage_problem.empty()) {
        fprintf(stderr, "trainopt check: %s\n", safe(report->usage_problem).c_str());
        return kExitUsage;
    }
    printf("\n%s", terminal_safe(check_to_text(*report)).c_str());
    return report->passed() ? 0 : kExitInvalid;
}

int tasks_list(const std::string& suite_name) {
    Result<TrustedInputs> trusted = locate_trusted_inputs();
    if (!trusted) return fail(trusted.error());
    Result<ScoringSuite> loaded = load_scoring_suite(*trusted, suite_name);
    if (!loaded) return fail(loaded.error());
    const Suite& suite = loaded->suite;
    const std::string origin =
        loaded->builtin ? "built into trainopt" : "not built in: read from " + safe(suite_name);
    printf("suite %s (%s):\n", safe(suite.name).c_str(), origin.c_str());
    int name_width = 0, hot_spot_width = 0;
    for (const TaskSpec& t : suite.tasks) {
        name_width = std::max(name_width, (int)safe(t.name).size());
        hot_spot_width = std::max(hot_spot_width, (int)safe(t.hot_spot).size());
    }
    for (const TaskSpec& t : suite.tasks) {
        printf("  %-*s  %-*s  V=%d T=%d C=%d L=%d NH=%d B=%d steps=%d  %.2f GFLOP/step\n",
               name_width, safe(t.name).c_str(), hot_spot_width, safe(t.hot_spot).c_str(),
               t.model.vocab_size, t.model.context, t.model.d_model, t.model.layers, t.model.heads,
               t.train.batch, t.train.steps, training_step_flops(t) / 1e9);
    }
    return 0;
}

int tasks_export(const std::string& report_path, const std::string& out_dir) {
    Result<ScoreReport> report = load_report(report_path);
    if (!report) return fail(report.error());
    Result<int> written = export_generated_tasks(*report, out_dir);
    if (!written) return fail(written.error());
    printf("wrote %d task files of %s to %s; score them with --suite %s\n", *written,
           safe(report->generated_suite).c_str(), safe(out_dir).c_str(), safe(out_dir).c_str());
    return 0;
}

int paired_ci(const ScoreOptions& options, const std::string& previous,
              const SequentialOptions& test, double budget_seconds) {
    CiOptions ci;
    ci.score = options;
    ci.previous = previous;
    ci.test = test;
    ci.budget_seconds = budget_seconds;
    ci.json_path = options.json_path;
    ci.markdown_path = options.markdown_path;
    Result<CiReport> report = run_paired_ci(ci);
    if (!report) return fail(report.error());
    printf("%s\n", ci_report_to_markdown(*report).c_str());
    if (!ci.json_path.empty()) printf("JSON report: %s\n", safe(ci.json_path).c_str());
    return ci_exit_code(*report);
}

int ci(const ScoreOptions& options, const std::string& against, double max_slowdown,
       const HistoryOption& history) {
    if (!(max_slowdown >= 0 && max_slowdown < 10)) return fail("--max-slowdown must be in [0, 10)");
    Result<ScoreReport> previous = load_report(against);
    if (!previous) return fail(previous.error());
    if (previous->verdict != Verdict::valid) {
        return fail("the previous report " + against + " is " + to_string(previous->verdict) +
                    ", not VALID");
    }
    if (previous->suite_hash == kUnknownHash)  // known before anything runs
        return fail("the previous report " + against +
                    " records no suite hash (written before spec hashes): its task specs cannot "
                    "be checked against this run's; score it again");
    Result<ScoreReport> current = run_score(options);
    if (!current) return fail(current.error());
    print_summary(*current);
    if (Status recorded = record_history(history, *current); !recorded)
        return fail(recorded.error());
    if (current->verdict != Verdict::valid) {
        fprintf(stderr, "trainopt ci: the submission is %s\n", to_string(current->verdict).c_str());
        return exit_code_for(*current);
    }
    // the same refusal as trainopt compare: other suites or task specs are not a regression
    if (Status comparable = check_comparable(*previous, against, *current); !comparable)
        return fail(comparable.error());
    RegressionResult result = compare_reports(*previous, *current, max_slowdown);
    for (const std::string& line : result.lines) printf("%s\n", safe(line).c_str());
    if (result.regression) {
        printf("trainopt ci: significant regression against %s\n", safe(against).c_str());
        return kExitRegression;
    }
    printf("trainopt ci: no significant regression against %s\n", safe(against).c_str());
    return 0;
}

int write_task_data(const std::string& task_file, const std::string& out_dir) {
    Result<TaskSpec> task = load_task(task_file);
    if (!task) return fail(task.error());
    if (Status written = prepare_task_data(*task, out_dir); !written) return fail(written.error());
    printf("wrote %s/train.bin and %s/val.bin\n", safe(out_dir).c_str(), safe(out_dir).c_str());
    return 0;
}

int eval_checkpoint(const std::string& checkpoint, const std::string& task_file, bool json) {
    Result<TaskSpec> task = load_task(task_file);
    if (!task) return fail(task.error());
    Result<CheckpointEvaluation> e = evaluate_checkpoint(*task, checkpoint);
    if (!e) return fail(e.error());
    if (json) {
        nlohmann::json out = {{"checkpoint", checkpoint},
                              {"task", task->name},
                              {"task_file", task->file},
                              {"steps", e->steps},
                              {"task_steps", task->train.steps},
                              {"heldout_loss", e->heldout_loss},
                              {"training_loss", e->training_loss},
                              {"batches", e->batches},
                              {"batch", e->batch},
                              {"context", e->context}};
        printf("%s\n", safe(out.dump()).c_str());
        return 0;
    }
    printf("checkpoint %s, task %s: %d steps trained (the task trains %d)\n",
           safe(checkpoint).c_str(), safe(task->name).c_str(), e->steps, task->train.steps);
    printf("held-out loss: %.6f nats (%d batches of %d x %d held-out tokens, reference kernels)\n",
           e->heldout_loss, e->batches, e->batch, e->context);
    printf(
        "training loss: %.6f nats (%d batches of %d x %d training tokens, spread over the "
        "training split)\n",
        e->training_loss, e->batches, e->batch, e->context);
    return 0;
}

int rerender_report(const std::string& json, const std::string& markdown_path,
                    const std::string& html_path) {
    Result<ScoreReport> report = load_report(json);
    if (!report) return fail(report.error());
    if (!markdown_path.empty()) {
        if (Status written = write_file_atomic(markdown_path, report_to_markdown(*report));
            !written)
            return fail(written.error());
    }
    if (!html_path.empty()) {
        if (Status written = write_file_atomic(html_path, report_to_html(*report)); !written)
            return fail(written.error());
    }
    print_summary(*report);
    return 0;
}

struct CalibrateCommand {
    std::string suite = "default";
    CalibrateOptions options;
    std::string json_path;
    std::string tolerances_dir;
    std::vector<std::string> from_json;  // saved measurements: apply the rule, train nothing
};

// trainopt calibrate: built-in twins of the reference on the suite's tasks (harness/calibrate.h).
int calibrate(const CalibrateCommand& c) {
    Result<TrustedInputs> trusted = locate_trusted_inputs();
    if (!trusted) return fail(trusted.error());
    Result<ScoringSuite> loaded = load_scoring_suite(*trusted, c.suite);
    if (!loaded) return fail(loaded.error());
    Result<CalibrationReport> report = failure("nothing calibrated");
    if (c.from_json.empty()) {
        CalibrateOptions options = c.options;
        options.stop = interrupted;  // Ctrl-C ends the runs between steps
        report = calibrate_suite(loaded->suite, options);
    } else {
        std::vector<std::string> texts;
        for (const std::string& path : c.from_json) {
            std::ifstream in(path, std::ios::binary);
            std::ostringstream text;
            text << in.rdbuf();
            if (!in) return fail("cannot read " + path);
            texts.push_back(text.str());
        }
        report = recalibrate(loaded->suite, texts, c.from_json);
    }
    if (!report) return fail(report.error());
    printf("%s", terminal_safe(calibration_table(*report)).c_str());
    for (const TaskCalibration& task : report->tasks) {
        const std::string snippet = tolerance_snippet(task);
        if (snippet.empty()) continue;
        printf("\n%s", terminal_safe(snippet).c_str());
        if (c.tolerances_dir.empty()) continue;
        // a custom suite's task name becomes a file name: letters, digits, '-', '_', '.' only
        const bool plain_name =
            !task.task.empty() && task.task[0] != '.' &&
            std::all_of(task.task.begin(), task.task.end(), [](char ch) {
                return std::isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.';
            });
        if (!plain_name) return fail("task name '" + task.task + "' cannot name a file");
        const std::string path = c.tolerances_dir + "/" + task.task + ".toml";
        if (Status written = write_file_atomic(path, snippet); !written)
            return fail(written.error());
    }
    if (!c.json_path.empty()) {
        if (Status written = write_file_atomic(c.json_path, calibration_json(*report)); !written)
            return fail(written.error());
        printf("JSON: %s\n", safe(c.json_path).c_str());
    }
    return report->accepted() ? 0 : kExitRefused;
}

// The command line: every subcommand, the options it fills, and whether it was given.
struct CommandLine {
    CLI::App app{"trainopt: score CPU-only LLM training optimizations against a naive baseline"};
    std::optional<uint64_t> seed;  // --seed, shared by the scoring commands

    ScoreOptions score_options;
    CLI::App* score = nullptr;
    ScoreOptions verify_options;
    CLI::App* verify = nullptr;
    CheckOptions check_options;
    CLI::App* check = nullptr;
    ScoreOptions baseline_options;
    CLI::App* baseline = nullptr;
    ProfileOptions profile_options;
    CLI::App* profile = nullptr;
    ScoreOptions ci_options;
    std::string against;
    std::string previous;
    std::optional<double> max_slowdown;
    SequentialOptions ci_test;
    double ci_budget = 300;
    CLI::App* ci = nullptr;
    HistoryOption score_history, ci_history;  // --history, --commit of score and ci

    BatchCommand batch;
    std::optional<uint64_t> batch_seed;
    CLI::App* batch_cmd = nullptr;
    LeaderboardCommand leaderboard;
    CLI::App* leaderboard_cmd = nullptr;

    CompareCommand compare;
    CLI::App* compare_cmd = nullptr;
    HistoryShowCommand history_show;
    CLI::App* history = nullptr;
    HistoryAddCommand history_add;
    CLI::App* history_add_cmd = nullptr;

    std::string workspace_dir;
    CLI::App* workspace_init = nullptr;
    std::string list_suite = "default";
    CLI::App* tasks_list = nullptr;
    CLI::App* tasks_export = nullptr;
    std::string export_report, export_out;
    std::string data_task, data_out;
    CLI::App* data = nullptr;
    std::string report_json, report_md, report_html;
    CLI::App* report = nullptr;
    std::string eval_checkpoint, eval_task;
    bool eval_json = false;
    CLI::App* eval = nullptr;
    CalibrateCommand calibrate;
    CLI::App* calibrate_cmd = nullptr;
};

void add_scoring_commands(CommandLine& cl) {
    CLI::App& app = cl.app;
    cl.score = app.add_subcommand("score", "score a submission against the baseline");
    cl.score
        ->add_option("submission", cl.score_options.submission,
                     "patch file, overlay or workspace directory")
        ->required();
    cl.score->add_option("--reps", cl.score_options.reps, "repetitions per task")
        ->capture_default_str();
    add_score_options(cl.score, cl.score_options, cl.seed);
    add_build_cache_options(cl.score, cl.score_options);
    cl.score->add_flag("--references", cl.score_options.references,
                       "also score the shipped example and expert submissions on the same suite "
                       "and seeds: the reports show where the submission stands (3x the time)");
    cl.score
        ->add_option("--references-dir", cl.score_options.references_dir,
                     "the submissions/ folder of a trainopt checkout (default: the checkout this "
                     "trainopt was built from; an install has none)")
        ->check(CLI::ExistingDirectory);

    cl.verify =
        app.add_subcommand("verify", "check a submission trains the same model (one repetition)");
    cl.verify
        ->add_option("submission", cl.verify_options.submission,
                     "patch file, overlay or workspace directory")
        ->required();
    add_score_options(cl.verify, cl.verify_options, cl.seed);
    add_build_cache_options(cl.verify, cl.verify_options);
    add_baseline_cache_options(cl.verify, cl.verify_options);
    add_incremental_options(cl.verify, cl.verify_options);

    CheckOptions& c = cl.check_options;
    cl.check = app.add_subcommand(
        "check",
        "quick correctness check while iterating: the first N steps of one task against the "
        "baseline's (cached); PASS or FAIL, no score, not the official verification");
    cl.check->add_option("submission", c.run.submission, "workspace, overlay directory or patch")
        ->required();
    cl.check->add_option("--task", c.task,
                         "the task (default: the suite's task with the cheapest step)");
    cl.check->add_option("--steps", c.steps, "steps of the task to check")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000000));
    cl.check->add_option("--suite", c.run.suite, "the suite the task comes from")
        ->capture_default_str();
    cl.check->add_option("--seed", c.run.seed,
                         "base seed (default: 1, fixed so the reference stays cached)");
    add_run_options(cl.check, c.run);
    add_build_cache_options(cl.check, c.run);
    add_baseline_cache_options(cl.check, c.run);
    add_incremental_options(cl.check, c.run);

    cl.baseline_options.submission = "baseline";
    cl.baseline = app.add_subcommand("baseline", "time the pristine baseline against itself");
    cl.baseline->add_option("--reps", cl.baseline_options.reps, "repetitions per task")
        ->capture_default_str();
    add_score_options(cl.baseline, cl.baseline_options, cl.seed);

    cl.ci = app.add_subcommand(
        "ci",
        "compare a submission with its previous version: REGRESSION, NO REGRESSION or "
        "UNDECIDED (docs/ci.md)");
    cl.ci->add_option("submission", cl.ci_options.submission, "the current version")->required();
    CLI::Option* previous = cl.ci->add_option(
        "--previous", cl.previous,
        "the previous version: a patch, overlay or workspace, baseline, or git:REV (the "
        "submission's path at that revision of its git repository)");
    CLI::Option* against = cl.ci->add_option(
        "--against", cl.against,
        "instead: a saved JSON report to compare speedups with (noisier; see docs/ci.md)");
    previous->excludes(against);
    cl.ci->add_option("--max-slowdown", cl.max_slowdown,
                      "allowed slowdown as a fraction (default 0.05 with --previous, 0.10 with "
                      "--against)");
    cl.ci->add_option("--budget", cl.ci_budget, "seconds of paired rounds at most (--previous)")
        ->capture_default_str();
    cl.ci->add_option("--alpha", cl.ci_test.alpha, "false-alarm rate over all looks (--previous)")
        ->capture_default_str();
    cl.ci->add_option("--max-rounds", cl.ci_test.max_rounds, "paired rounds at most (--previous)")
        ->capture_default_str();
    cl.ci->add_option("--reps", cl.ci_options.reps, "repetitions per task (--against)")
        ->capture_default_str();
    add_score_options(cl.ci, cl.ci_options, cl.seed);
    add_build_cache_options(cl.ci, cl.ci_options);
    for (auto [cmd, history] : {std::pair{cl.score, &cl.score_history}, {cl.ci, &cl.ci_history}}) {
        cmd->add_option("--history", history->db,
                        "append the finished score to this SQLite history (created if absent)");
        cmd->add_option("--commit", history->commit,
                        "the commit to record in the history (default: git describe of the "
                        "trainopt checkout)");
    }
}

// trainopt profile (harness/profile.h): one task, one run each, no score.
void add_profile_command(CommandLine& cl) {
    ProfileOptions& p = cl.profile_options;
    ScoreOptions& o = p.run;
    cl.profile = cl.app.add_subcommand(
        "profile",
        "where a submission's time goes on one task: per-kernel time beside the baseline's, and "
        "the top functions when perf can sample (not a score)");
    cl.profile->add_option("submission", o.submission, "patch file, overlay or workspace directory")
        ->required();
    cl.profile->add_option("--task", p.task, "the task of the suite to profile")->required();
    cl.profile
        ->add_option("--suite", o.suite,
                     "a built-in suite (default, edge, test, text, text-test) or a directory of "
                     "task files")
        ->capture_default_str();
    cl.profile->add_option("--seed", cl.seed,
                           "base seed, as for score (default: a fresh random seed)");
    add_run_options(cl.profile, o);  // without bubblewrap, nothing is sampled
    cl.profile->add_flag_function(
        "--no-sample", [&p](int64_t) { p.sample = false; },
        "skip the sampled run under perf (only the per-kernel table; also the case without "
        "bubblewrap)");
    cl.profile->add_option("--top", p.top_functions, "rows of the top-functions table")
        ->capture_default_str()
        ->check(CLI::Range(1, 200));
    add_build_cache_options(cl.profile, o);
}

// trainopt batch and trainopt leaderboard (harness/batch_command.h, leaderboard_command.h).
void add_batch_commands(CommandLine& cl) {
    BatchCommand& b = cl.batch;
    cl.batch_cmd = cl.app.add_subcommand(
        "batch",
        "score many submissions against one set of baseline references, resumably (docs/batch.md)");
    cl.batch_cmd->add_option("submissions", b.options.submissions,
                             "patch files, overlay or workspace directories");
    cl.batch_cmd->add_option("--dir", b.dir, "score every entry of this directory");
    cl.batch_cmd->add_option("--list", b.list, "score the paths this file lists, one a line");
    cl.batch_cmd->add_option("--out", b.options.out_dir,
                             "reports, leaderboard and (by default) the database go here; the "
                             "same --out resumes the batch");
    cl.batch_cmd->add_option("--db", b.options.db,
                             "the SQLite history to keep the batch in (default OUT/batch.db)");
    cl.batch_cmd->add_option("--reps", b.options.score.reps, "repetitions (seeds) per task")
        ->capture_default_str();
    cl.batch_cmd
        ->add_option("--retime-every", b.options.retime_every,
                     "time the baseline again after this many submissions (0: no limit by count)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cl.batch_cmd
        ->add_option("--retime-minutes", b.options.retime_minutes,
                     "time the baseline again once the submissions' runs since the last timing "
                     "took this long (0: no limit by time; both 0: only at the start)")
        ->capture_default_str()
        ->check(finite_at_least(0));
    cl.batch_cmd
        ->add_option("--kill-factor", b.options.kill_factor,
                     "kill a submission run after this many times the baseline's time")
        ->capture_default_str()
        ->check(finite_at_least(2));
    cl.batch_cmd->add_option("--commit", b.options.commit,
                             "the commit to record in the history (default: git describe)");
    add_suite_options(cl.batch_cmd, b.options.score, cl.batch_seed);
    add_run_options(cl.batch_cmd, b.options.score);
    add_build_cache_options(cl.batch_cmd, b.options.score);
    cl.batch_cmd->add_flag("--slurm", b.slurm,
                           "submit a Slurm job array, one submission per exclusive node, and a "
                           "merge job (docs/batch.md)");
    cl.batch_cmd->add_option("--slurm-option", b.slurm_options,
                             "an extra #SBATCH option for both jobs, e.g. --partition=cpu "
                             "(repeatable)");
    cl.batch_cmd->add_flag("--slurm-no-submit", b.slurm_no_submit,
                           "with --slurm: write the job scripts, do not submit them");
    cl.batch_cmd->add_flag("--merge-shards", b.merge_shards,
                           "record the Slurm shards' reports in OUT's database (the merge job)");

    LeaderboardCommand& l = cl.leaderboard;
    cl.leaderboard_cmd = cl.app.add_subcommand(
        "leaderboard", "a batch's submissions ranked, as Markdown and HTML tables");
    cl.leaderboard_cmd->add_option("db", l.db, "the batch's database")->required();
    cl.leaderboard_cmd->add_option("--batch", l.batch,
                                   "the batch's output directory (default: the latest batch)");
    cl.leaderboard_cmd
        ->add_option("--sort", l.sort,
                     "speedup (with the 4x line), submission, verdict or position")
        ->capture_default_str();
    cl.leaderboard_cmd->add_option("--md", l.markdown_path, "write the Markdown table here");
    cl.leaderboard_cmd->add_option("--html", l.html_path, "write the HTML page here");
}

// trainopt compare and trainopt history (harness/compare_command.h, history_command.h).
void add_history_commands(CommandLine& cl) {
    CompareCommand& c = cl.compare;
    cl.compare_cmd = cl.app.add_subcommand(
        "compare", "compare two saved reports of the same suite (A the reference, B the new)");
    cl.compare_cmd->add_option("a", c.previous, "A.json: the reference report")->required();
    cl.compare_cmd->add_option("b", c.current, "B.json: the report judged against A")->required();
    cl.compare_cmd
        ->add_option("--max-slowdown", c.max_slowdown, "allowed slowdown as a fraction (0.1 = 10%)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 9.99));
    cl.compare_cmd->add_option("--md", c.markdown_path, "write the comparison as Markdown here");
    cl.compare_cmd->add_option("--json", c.json_path, "write the comparison as JSON here");

    HistoryShowCommand& h = cl.history_show;
    cl.history = cl.app.add_subcommand(
        "history", "the score history in an SQLite database: series per task, change points");
    cl.history->require_subcommand(0, 1);
    cl.history->add_option("db", h.db, "the history database");
    cl.history->add_option("--suite", h.suite, "only runs of this suite");
    cl.history->add_option("--task", h.task, "only this task");
    cl.history->add_option("--submission", h.submission, "only runs of this submission");
    cl.history->add_option("--md", h.markdown_path, "write the series as Markdown here");
    cl.history->add_option("--html", h.html_path, "write the series and their charts as HTML here");
    HistoryAddCommand& a = cl.history_add;
    cl.history_add_cmd = cl.history->add_subcommand("add", "append a saved JSON report");
    cl.history_add_cmd->add_option("db", a.db, "the history database (created if absent)")
        ->required();
    cl.history_add_cmd->add_option("report", a.report, "report.json")->required();
    cl.history_add_cmd->add_option("--commit", a.commit,
                                   "the commit the report was scored at (default: unknown)");
    cl.history_add_cmd->add_option(
        "--machine", a.machine,
        "the machine it was scored on, for a report from before machine identities");
}

void add_other_commands(CommandLine& cl) {
    CLI::App& app = cl.app;
    CLI::App* workspace = app.add_subcommand("workspace", "editable workspaces");
    workspace->require_subcommand(1);
    cl.workspace_init = workspace->add_subcommand("init", "create an editable copy plus TASK.md");
    cl.workspace_init->add_option("dir", cl.workspace_dir, "directory to create")->required();

    CLI::App* tasks = app.add_subcommand("tasks", "task suites");
    tasks->require_subcommand(1);
    cl.tasks_list = tasks->add_subcommand("list", "list the tasks of a suite");
    cl.tasks_list->add_option("--suite", cl.list_suite, "suite")->capture_default_str();

    cl.tasks_export = tasks->add_subcommand(
        "export", "write the task files of the generated suite a report scored, to score again");
    cl.tasks_export->add_option("report", cl.export_report, "report.json")->required();
    cl.tasks_export->add_option("--out", cl.export_out, "directory to create")->required();

    cl.data = app.add_subcommand("data", "write a task's train.bin and val.bin");
    cl.data->add_option("task", cl.data_task, "task file")->required();
    cl.data->add_option("--out", cl.data_out, "output directory")->required();

    cl.report = app.add_subcommand("report", "re-render a saved JSON report");
    cl.report->add_option("json", cl.report_json, "report.json")->required();
    cl.report->add_option("--md", cl.report_md, "write Markdown here");
    cl.report->add_option("--html", cl.report_html, "write HTML here");

    cl.eval = app.add_subcommand(
        "eval", "held-out and training loss of a checkpoint (final.ckpt) on a task");
    cl.eval->add_option("checkpoint", cl.eval_checkpoint, "final.ckpt")->required();
    cl.eval->add_option("--task", cl.eval_task, "task file the checkpoint was trained on")
        ->required();
    cl.eval->add_flag("--json", cl.eval_json, "print one JSON object");
    CalibrateCommand& c = cl.calibrate;
    cl.calibrate_cmd = app.add_subcommand(
        "calibrate", "measure legitimate and cheating twins of the reference; recommend checks");
    cl.calibrate_cmd
        ->add_option("suite", c.suite, "a built-in suite (default, edge, test) or a directory")
        ->capture_default_str();
    cl.calibrate_cmd->add_option("--seeds", c.options.seeds, "seeds per task")
        ->capture_default_str()
        ->check(CLI::Range(1, 1000));
    cl.calibrate_cmd->add_flag("--legitimate-only", c.options.legitimate_only,
                               "train the reference and the legitimate twin only (many seeds, "
                               "cheaply): exit 0 when every task's tolerances admit the twin, 3 "
                               "when one does not; no recommendation");
    cl.calibrate_cmd->add_option("--seed", c.options.base_seed, "base seed, as for score")
        ->capture_default_str();
    cl.calibrate_cmd->add_option("--task", c.options.only_tasks,
                                 "calibrate only this task (repeatable)");
    cl.calibrate_cmd->add_option("--threads", c.options.threads, "cores to use (default: all)");
    cl.calibrate_cmd->add_option("--json", c.json_path, "write the measurements here");
    cl.calibrate_cmd->add_option(
        "--write-tolerances", c.tolerances_dir,
        "write each accepted task's [verify]/[tolerances] to DIR/NAME.toml");
    cl.calibrate_cmd->add_option("--from-json", c.from_json,
                                 "apply the rule to saved --json measurements (repeatable)");
}

// Runs the subcommand that was given.
int run_command(CommandLine& cl) {
    if (*cl.score || *cl.verify || *cl.baseline || *cl.ci) {
        ScoreOptions& o = *cl.score      ? cl.score_options
                          : *cl.verify   ? cl.verify_options
                          : *cl.baseline ? cl.baseline_options
                                         : cl.ci_options;
        o.seed = cl.seed;
        if (!o.references_dir.empty()) o.references = true;  // --references-dir implies it
        o.command = *cl.score ? "score" : *cl.verify ? "verify" : *cl.baseline ? "baseline" : "ci";
        if (*cl.verify) {
            o.reps = 1;
            o.measure_peak = false;
            // a fixed seed's baseline outputs are worth keeping (harness/baseline_cache.h)
            o.reuse_baseline_outputs = o.seed.has_value();
            o.incremental_build = true;  // the agent's loop, not an official number
        }
        if (*cl.ci && cl.previous.empty() && cl.against.empty())
            return fail("ci needs --previous (the previous version) or --against (a report)");
        if (*cl.ci && !cl.previous.empty()) {
            SequentialOptions test = cl.ci_test;
            test.max_slowdown = cl.max_slowdown.value_or(0.05);
            return paired_ci(o, cl.previous, test, cl.ci_budget);
        }
        if (*cl.ci) return ci(o, cl.against, cl.max_slowdown.value_or(0.10), cl.ci_history);
        return run_and_report(o, *cl.score ? cl.score_history : HistoryOption{});
    }
    if (*cl.profile) {
        cl.profile_options.run.seed = cl.seed;
        return profile(cl.profile_options);
    }
    if (*cl.check) {
        cl.check_options.run.command = "check";
        cl.check_options.run.reps = 1;
        cl.check_options.run.reuse_baseline_outputs = true;
        cl.check_options.run.incremental_build = true;
        return check(cl.check_options);
    }
    if (*cl.workspace_init) return workspace_init(cl.workspace_dir);
    if (*cl.tasks_list) return tasks_list(cl.list_suite);
    if (*cl.tasks_export) return tasks_export(cl.export_report, cl.export_out);
    if (*cl.data) return write_task_data(cl.data_task, cl.data_out);
    if (*cl.report) return rerender_report(cl.report_json, cl.report_md, cl.report_html);
    if (*cl.eval) return eval_checkpoint(cl.eval_checkpoint, cl.eval_task, cl.eval_json);
    if (*cl.calibrate_cmd) return calibrate(cl.calibrate);
    if (*cl.batch_cmd) {
        cl.batch.options.score.seed = cl.batch_seed;
        return run_batch_command(cl.batch);
    }
    if (*cl.leaderboard_cmd) return run_leaderboard(cl.leaderboard);
    if (*cl.compare_cmd) return run_compare(cl.compare);
    if (*cl.history_add_cmd) return run_history_add(cl.history_add);
    if (*cl.history) {
        if (cl.history_show.db.empty()) {
            fprintf(stderr,
                    "trainopt history: give the database: trainopt history DB, or "
                    "trainopt history add DB REPORT.json\n");
            return kExitUsage;
        }
        return run_history_show(cl.history_show);
    }
    return 0;
}

// What is wrong with a command line whose words should name a subcommand of a command that
// needs one and do not: "unknown command 'frob'; commands: score, verify, ...", or a missing
// one. Empty when the words name commands (CLI11 reports anything else wrong with them).
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
    const CLI::App* at = &app;
    std::string path;  // the commands named so far, "workspace "
    for (int i = 1;; i++) {
        std::string names;
        const CLI::App* next = nullptr;
        const std::string word = i < argc ? argv[i] : "";
        for (const CLI::App* sub : at->get_subcommands({})) {
            if (i < argc && sub->check_name(word)) next = sub;
            names += (names.empty() ? "" : ", ") + sub->get_name();
        }
        if (next != nullptr) {
            at = next;
            path += word + " ";
            continue;
        }
        if (at->get_require_subcommand_min() == 0 || names.empty()) return "";
        if (i >= argc) return "give a " + path + "command: " + names;
        if (word.empty() || word[0] == '-') return "";  // --help, or an option CLI11 judges
        return "unknown command '" + path + word + "'; " + path + "commands: " + names;
    }
}

}  // namespace

int main(int argc, char** argv) {
    install_interrupt_handlers();
    use_safe_log_pattern();
    CommandLine cl;
    cl.app.require_subcommand(1);
    add_scoring_commands(cl);
    add_profile_command(cl);
    add_other_commands(cl);
    add_history_commands(cl);
    add_batch_commands(cl);
    if (const std::string unknown = unknown_command(cl.app, argc, argv); !unknown.empty()) {
        fprintf(stderr, "trainopt: error: %s\n", safe(unknown).c_str());
        return kExitUsage;
    }
    try {
        cl.app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11's messages quote the arguments, which may be a hostile file name
        std::ostringstream out, err;
        const int code = cl.app.exit(e, out, err);
        fputs(terminal_safe(out.str()).c_str(), stdout);
        fputs(terminal_safe(err.str()).c_str(), stderr);
        return code == 0 ? 0 : kExitUsage;  // --help is 0; CLI11's own codes are 100-113
    }
    return run_command(cl);
}
