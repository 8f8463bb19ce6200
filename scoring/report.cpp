// The report's data made consistent (finalize_report: the backstop, speedups, CIs and the
// verdict) and loaded back from a saved JSON file. The renderings live in report_json.cpp,
// report_markdown.cpp and report_html.cpp.
#include "scoring/report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

namespace trainopt {

std::string to_string(Verdict verdict) {
    switch (verdict) {
        case Verdict::valid:
            return "VALID";
        case Verdict::invalid:
            return "INVALID";
        case Verdict::rejected:
            return "REJECTED";
        case Verdict::incomplete:
            return "INCOMPLETE";
    }
    return "?";
}

std::string reference_label(const std::string& role) {
    if (role == "example") return "example submission (a few hours of work)";
    if (role == "expert") return "expert submission (the headroom)";
    return role;
}

double PhaseSeconds::other() const {
    return std::max(0.0, total - setup - build - machine - task_data - timed_runs - verification);
}

bool shows_tensors(const ScoreReport& report, const TaskReport& task) {
    return !task.tensors.empty() && (report.command == "verify" || !task.valid);
}

TaskTimes times_of(const TaskReport& t) {
    return {t.baseline_seconds, t.submission_seconds, t.valid};
}

namespace {

// The speed-of-light backstop (report.h, docs/scoring.md). Checks every repetition of every task
// that is still valid; idempotent, since a task it invalidated is no longer valid the next time
// (finalize_report runs after every repetition and again when a report is loaded).
void apply_backstop(ScoreReport& report) {
    report.backstop_margin = kBackstopMargin;
    const FmaCeiling& ceiling = report.fma_ceiling;
    const bool usable = ceiling.gflops > 0 && ceiling.not_a_ceiling.empty();
    bool any_runs = false;
    for (TaskReport& t : report.tasks) {
        t.backstop_seconds = t.backstop_fraction = 0;
        any_runs = any_runs || !t.submission_seconds.empty();
        if (!usable || !(t.step_gflop > 0) || t.steps <= 0) continue;
        t.backstop_seconds = t.steps * t.step_gflop / ceiling.gflops;
        if (t.submission_seconds.empty()) continue;
        const auto fastest =
            std::min_element(t.submission_seconds.begin(), t.submission_seconds.end());
        t.backstop_fraction = t.backstop_seconds / *fastest;
        if (!t.valid || !(*fastest < t.backstop_seconds / (1 + kBackstopMargin))) continue;
        char detail[512];
        snprintf(detail, sizeof(detail),
                 ": repetition %d ran in %.4f s, but the task's %.2f GFLOP of matmul multiply-adds "
                 "(%d steps of %.4g) take at least %.4f s at this machine's FMA ceiling of %.1f "
                 "GFLOP/s (%s, %d threads); that run reached %.0f%% of the bound, and only a "
                 "margin of %.0f%% is allowed for measurement",
                 (int)(fastest - t.submission_seconds.begin()) + 1, *fastest,
                 t.steps * t.step_gflop, t.steps, t.step_gflop, t.backstop_seconds, ceiling.gflops,
                 ceiling.isa.c_str(), ceiling.threads, 100 * t.backstop_fraction,
                 100 * kBackstopMargin);
        t.valid = false;
        t.reasons.push_back(kBackstopReason + std::string(detail));
    }
    // Say so when the backstop could not run (a report from before it, or a CPU whose FMA loop
    // is no ceiling); a refused submission has no runs to check.
    if (!any_runs || !report.rejected.empty() || usable) return;
    const std::string warning =
        "speed-of-light backstop not applied: " +
        (ceiling.gflops > 0 ? ceiling.not_a_ceiling
                            : std::string("the machine's FMA ceiling was not measured"));
    if (std::find(report.warnings.begin(), report.warnings.end(), warning) == report.warnings.end())
        report.warnings.push_back(warning);
}

// A complete report holds the whole suite as scored, so its suite hash is its tasks' (a saved
// report's recorded one is recomputed, like its speedups). Otherwise the one recorded when the
// score started stays.
void record_suite_hash(ScoreReport& report) {
    if (!report.complete || !report.rejected.empty()) return;
    std::vector<std::pair<std::string, std::string>> named;
    for (const TaskReport& t : report.tasks) named.emplace_back(t.name, t.spec_hash);
    report.suite_hash = suite_hash(std::move(named));
}

}  // namespace

void finalize_report(ScoreReport& report) {
    apply_backstop(report);
    record_suite_hash(report);
    std::vector<TaskTimes> all;
    bool all_valid = true;
    for (size_t i = 0; i < report.tasks.size(); i++) {
        TaskReport& t = report.tasks[i];
        TaskTimes times = times_of(t);
        t.speedup = task_speedup(times);
        std::vector<double> boot =
            bootstrap_task_speedup(times, kBootstrapResamples, kTaskBootstrapSeed + i);
        t.speedup_ci = {percentile(boot, 2.5), percentile(boot, 97.5)};
        if (report.peak_gflops > 0 && t.step_gflop > 0 && !t.baseline_seconds.empty()) {
            t.speed_of_light_seconds = t.steps * t.step_gflop / report.peak_gflops;
            t.speed_of_light_speedup = median(t.baseline_seconds) / t.speed_of_light_seconds;
        }
        all.push_back(times);
        all_valid = all_valid && t.valid;
    }
    if (report.suites) {
        // each suite's tasks in report order; the headline weighs the two suites equally
        std::vector<TaskTimes> first, second;
        for (size_t i = 0; i < report.tasks.size(); i++)
            (report.tasks[i].suite == report.suites->first ? first : second).push_back(all[i]);
        report.suites->summary = summarize_two_suites(first, second);
        report.summary = report.suites->summary.headline;
    } else {
        report.summary = summarize_suite(all);
    }
    if (!report.rejected.empty()) {
        report.verdict = Verdict::rejected;
    } else if (!report.complete) {
        report.verdict = Verdict::incomplete;
    } else {
        report.verdict = all_valid ? Verdict::valid : Verdict::invalid;
    }
}

Result<ScoreReport> load_report(const std::string& path) {
    std::ifstream f(path);
    if (!f) return failure("cannot read report " + path);
    nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_discarded()) return failure("report " + path + " is not valid JSON");
    Result<ScoreReport> report = report_from_json(j);
    if (!report) return failure("report " + path + ": " + report.error());
    return report;
}

}  // namespace trainopt
