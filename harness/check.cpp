#include "harness/check.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include "harness/cli_error.h"
#include "harness/safe_file.h"
#include "harness/session.h"
#include "harness/trusted_inputs.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxTaskFileBytes = (size_t)1 << 20;
constexpr int kAllStepsUpTo = 30;  // a check of at most this many steps shows every one
constexpr size_t kTensorRows = 8;  // the farthest tensors shown

// "1.2e-05": deviations and tolerances.
std::string short_number(double v) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.2g", v);
    return buf;
}

std::string loss_number(double v) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.7f", v);
    return buf;
}

// The steps the loss table shows: every step of a short check, else the first and last few,
// and those around the first step over the tolerance and the worst step, in order.
std::vector<int> shown_steps(int steps, int first_over, int worst) {
    std::set<int> shown;
    if (steps <= kAllStepsUpTo) {
        for (int s = 0; s < steps; s++) shown.insert(s);
    } else {
        for (int s = 0; s < 5; s++) shown.insert(s);
        for (int s = steps - 3; s < steps; s++) shown.insert(s);
        for (int centre : {first_over, worst}) {
            if (centre < 0) continue;
            for (int s = std::max(0, centre - 2); s <= std::min(steps - 1, centre + 2); s++)
                shown.insert(s);
        }
    }
    return {shown.begin(), shown.end()};
}

std::string loss_table(const CheckReport& r) {
    const Comparison& c = r.rep.verification.comparison;
    const size_t steps = std::min(c.reference_losses.size(), c.submission_losses.size());
    std::vector<std::vector<std::string>> rows = {
        {"step", "baseline loss", "submission loss", "|delta|"}};
    int previous = -1;
    for (int s : shown_steps((int)steps, c.first_step_over, c.worst_step)) {
        if (previous >= 0 && s > previous + 1) rows.push_back({"...", "", "", ""});
        previous = s;
        const double ref = c.reference_losses[s], sub = c.submission_losses[s];
        std::string note;
        if (s == c.first_step_over) note = "first over the tolerance";
        if (s == c.worst_step && c.max_loss_diff > 0)
            note += std::string(note.empty() ? "" : "; ") + "worst";
        rows.push_back({std::to_string(s), loss_number(ref), loss_number(sub),
                        format_scientific(std::fabs(sub - ref))});
        if (!note.empty()) rows.back().push_back(note);  // a fifth column, for these rows only
    }
    return text_table(rows, {true, true, true, true, false}, "  ");
}

std::string tensor_table(const CheckReport& r) {
    const std::vector<TensorDistance>& tensors = r.rep.verification.comparison.tensors;
    if (tensors.empty()) return "";
    const size_t shown = std::min(kTensorRows, tensors.size());
    std::vector<std::vector<std::string>> rows = {
        {"tensor", "layer", "relative distance", "gradient from"}};
    for (size_t i = 0; i < shown; i++) {
        const TensorDistance& d = tensors[i];
        rows.push_back({kParamTensorNames[d.slice.tensor], layer_text(d.slice.layer),
                        format_scientific(d.rel), gradient_kernel_of(d.slice.tensor)});
    }
    return "\nFinal weights per tensor, the farthest " + std::to_string(shown) + " of " +
           std::to_string(tensors.size()) + ":\n" + wrapped(kTensorTableExplanation, "  ") +
           text_table(rows, {false, true, true, false}, "  ");
}

std::string findings(const CheckReport& r) {
    std::string out;
    auto add = [&](const std::string& label, const std::string& message) {
        out += "  " + label + safe_indented(message) + "\n";
    };
    for (const std::string& reason : r.rejected) add("REJECTED: ", reason);
    for (const std::string& reason : r.rep.verification.reasons) add("FAIL: ", reason);
    for (const std::string& warning : r.warnings) add("WARNING: ", warning);
    return out.empty() ? "" : "\nFindings:\n" + out;
}

// Why `steps` cannot be checked on `task`; empty when it can.
std::string steps_problem(const TaskSpec& task, int steps) {
    if (steps >= 1 && steps <= task.train.steps) return "";
    return "--steps " + std::to_string(steps) + ": the task " + task.name + " trains " +
           std::to_string(task.train.steps) + " steps; check 1 to " +
           std::to_string(task.train.steps);
}

}  // namespace

Result<TaskSpec> choose_check_task(const Suite& suite, const std::string& name) {
    std::string names;
    for (const TaskSpec& t : suite.tasks) names += (names.empty() ? "" : ", ") + t.name;
    if (suite.tasks.empty()) return failure("the suite " + suite.name + " has no tasks");
    if (name.empty()) {
        const auto cheapest = std::min_element(
            suite.tasks.begin(), suite.tasks.end(), [](const TaskSpec& a, const TaskSpec& b) {
                return training_step_flops(a) < training_step_flops(b);
            });
        return *cheapest;
    }
    for (const TaskSpec& t : suite.tasks) {
        if (t.name == name) return t;
    }
    return failure("the suite " + suite.name + " has no task '" + name + "'; its tasks: " + names);
}

Result<TaskSpec> truncated_task(const TaskSpec& task, int steps, const std::string& dir) {
    if (const std::string problem = steps_problem(task, steps); !problem.empty())
        return failure(problem);
    const fs::path source(task.file);
    Result<std::string> text = read_file_beneath(
        source.parent_path().string(), source.filename().string(), {kMaxTaskFileBytes, 10});
    if (!text) return failure("the task file of " + task.name + ": " + text.error());
    toml::table root;
    try {
        root = toml::parse(*text, task.file);
    } catch (const toml::parse_error& e) {
        return failure("the task file " + task.file +
                       " cannot be parsed: " + std::string(e.description()));
    }
    toml::table* train = root["train"].as_table();
    if (train == nullptr) return failure("the task file " + task.file + " has no [train] table");
    train->insert_or_assign("steps", steps);
    if (task.verify.check == CheckKind::local) {
        if (toml::table* verify = root["verify"].as_table()) {
            verify->erase("windows");
            verify->erase("window_steps");
            verify->insert_or_assign("check", "trajectory");
        }
    }
    if (task.data.kind == "text") {
        // the text files as the task resolved them: relative paths would resolve elsewhere
        toml::table* data = root["data"].as_table();
        if (data == nullptr) return failure("the task file " + task.file + " has no [data] table");
        toml::array paths;
        for (const std::string& p : task.data.paths) paths.push_back(p);
        data->erase("path");
        data->insert_or_assign("paths", std::move(paths));
    }
    std::ostringstream out;
    out << "# " << task.name << " truncated to its first " << steps << " steps by trainopt check\n"
        << root << "\n";
    const std::string path = dir + "/" + task.name + ".toml";
    if (Status written = write_file_atomic(path, out.str()); !written)
        return failure(written.error());
    chmod(path.c_str(), 0644);
    Result<TaskSpec> loaded = load_task(path);
    if (!loaded) return failure("the truncated task: " + loaded.error());
    return loaded;
}

Result<CheckReport> run_check(const CheckOptions& options) {
    const ScoreOptions& o = options.run;
    CheckReport report;
    report.submission = terminal_safe_line(o.submission);
    report.steps = options.steps;
    Result<TrustedInputs> trusted = load_trusted_inputs();
    if (!trusted) return failure(trusted.error());
    report.warnings = trusted->warnings;
    Result<ScoringSuite> loaded = load_scoring_suite(*trusted, o.suite);
    if (!loaded) return failure(loaded.error());
    report.suite = loaded->suite.name;
    Result<TaskSpec> task = choose_check_task(loaded->suite, options.task);
    if (!task) {
        report.usage_problem = task.error();
        return report;
    }
    report.task = task->name;
    report.task_steps = task->train.steps;
    report.usage_problem = steps_problem(*task, options.steps);
    if (!report.usage_problem.empty()) return report;

    Result<SandboxMode> sandbox = choose_sandbox(o);
    if (!sandbox) return failure(sandbox.error());
    if (*sandbox == SandboxMode::none) report.warnings.push_back(kUnsandboxedWarning);
    Result<std::string> workdir = make_workdir(o);
    if (!workdir) return failure(workdir.error());
    WorkdirGuard guard{*workdir, o.keep_workdir};
    const std::string task_dir = *workdir + "/check-task";
    if (mkdir(task_dir.c_str(), 0755) != 0 || chmod(task_dir.c_str(), 0755) != 0)
        return failure("cannot create " + task_dir + ": " + strerror(errno));
    Result<TaskSpec> checked = truncated_task(*task, options.steps, task_dir);
    if (!checked) return failure(checked.error());
    report.checked = *checked;
    Result<std::vector<int>> cpus = choose_cores(o.threads);
    if (!cpus) return failure(cpus.error());
    const std::optional<CacheDir> baseline_cache = open_baseline_cache_for(o, *sandbox);
    HarnessContext ctx = make_context(o, *trusted, *sandbox, *workdir, *cpus);
    if (baseline_cache) ctx.baseline_cache = &*baseline_cache;

    Result<TrainerBuild> baseline = baseline_trainer(*trusted);
    if (!baseline) return failure(baseline.error());
    Result<PreparedSubmission> submission = prepare_submission(o, ctx, *baseline);
    if (!submission) return failure(submission.error());
    report.submission_kind = submission->kind;
    report.trainer_from_build_cache = submission->build.from_cache;
    report.build = submission->build;
    for (const std::string& w : submission->warnings) report.warnings.push_back(w);
    report.rejected = submission->rejected;
    if (!report.rejected.empty()) return report;

    TaskEvaluation eval;
    eval.task = *checked;
    auto progress = [&](const TaskEvaluation&, int, const std::string& stage) {
        if (stage != "done") spdlog::info("check {}: {}", checked->name, stage);
    };
    const uint64_t seed = o.seed.value_or(kCheckSeed);
    if (Status evaluated =
            evaluate_task(ctx, *baseline, submission->trainer, 1, seed, progress, eval);
        !evaluated)
        return failure("task " + checked->name + ": " + evaluated.error());
    if (eval.reps.empty()) return failure("task " + checked->name + ": the check did not run");
    report.ran = true;
    report.rep = eval.reps.front();
    for (const std::string& w : eval.warnings) report.warnings.push_back(w);
    return report;
}

std::string check_to_text(const CheckReport& r) {
    std::ostringstream out;
    const std::string task = terminal_safe_line(r.task);
    out << "trainopt check: " << (r.passed() ? "PASS" : "FAIL") << "\n\n";
    out << wrapped("Not the official verification: a quick check of the first " +
                       std::to_string(r.steps) + " of the " + std::to_string(r.task_steps) +
                       " steps of one task with one seed. Only `trainopt verify` (every task, "
                       "every step) decides whether a submission trains the same model; a check "
                       "gives no score and no time.",
                   "  ")
        << "\n";
    out << "  submission: " << terminal_safe_line(r.submission) << " ("
        << terminal_safe_line(r.submission_kind) << ")";
    if (r.rejected.empty() && r.submission_kind != "baseline")
        out << ", trainer "
            << (r.trainer_from_build_cache ? "reused from the build cache"
                : r.build.incremental      ? "built incrementally" + compile_counts_text(r.build)
                                           : "built");
    out << "\n  task: " << task << " of the suite " << terminal_safe_line(r.suite) << ", steps 0-"
        << r.steps - 1;
    if (r.ran) {
        out << ", seed " << r.rep.seed << "; the baseline's reference "
            << (r.rep.baseline_cached ? "from the baseline cache" : "computed now");
    }
    out << "\n";
    if (r.ran && r.rep.verification.comparison.compared) {
        const Comparison& c = r.rep.verification.comparison;
        const Tolerances& tol = r.checked.tolerances;
        out << "\n" << loss_table(r) << "\n";
        out << "  largest |delta| " << format_scientific(c.max_loss_diff) << " nats"
            << (c.worst_step >= 0 ? " at step " + std::to_string(c.worst_step) : "")
            << " (tolerance " << short_number(tol.loss_abs) << "); first step over it: "
            << (c.first_step_over >= 0 ? std::to_string(c.first_step_over) : "none") << "\n";
        out << "  held-out loss " << loss_number(c.heldout_submission) << " vs reference "
            << loss_number(c.heldout_reference) << " (|delta| " << format_scientific(c.heldout_diff)
            << ", tolerance " << short_number(tol.heldout_abs) << ")\n";
        out << "  final weights: relative distance " << format_scientific(c.weight_distance)
            << " of the training update (tolerance " << short_number(tol.weights_rel) << ")\n";
        out << tensor_table(r);
    }
    out << findings(r);
    if (r.passed()) {
        out << "\n"
            << wrapped(
                   "Next: `trainopt verify` for the whole suite (with --seed S it reuses the "
                   "baseline's cached outputs too).",
                   "");
    }
    return out.str();
}

}  // namespace trainopt
