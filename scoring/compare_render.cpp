// The comparison of two reports as Markdown (what `trainopt compare` prints and --md writes) and
// JSON (--json). Every string from a report is untrusted: Markdown goes through
// markdown_inline() and markdown_code_span(), never raw.
#include <map>
#include <sstream>

#include "scoring/compare.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

constexpr int kComparisonVersion = 1;

// "+4.2%" for a ratio of 1.042.
std::string change_text(double ratio) {
    if (!(ratio > 0)) return "n/a";
    const double pct = (ratio - 1) * 100;
    return (pct >= 0 ? "+" : "") + format_fixed(pct, 1) + "%";
}

std::string speedup_text(double speedup, const Interval& ci) {
    return format_fixed(speedup, 2) + "x (" + format_fixed(ci.low, 2) + " - " +
           format_fixed(ci.high, 2) + ")";
}

const TaskReport* find_task(const ScoreReport& r, const std::string& name) {
    for (const TaskReport& t : r.tasks) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

std::string md_report_line(const LabelledReport& r) {
    const ScoreReport& s = *r.report;
    return "- " + markdown_inline(r.label) + ": submission " + markdown_code_span(s.submission) +
           ", " + markdown_inline(s.created_at) + ", " + markdown_inline(s.machine.key()) + ", " +
           std::to_string(s.reps) + " repetitions: mean " +
           speedup_text(s.summary.arithmetic, s.summary.arithmetic_ci) + ", geometric mean " +
           speedup_text(s.summary.geometric, s.summary.geometric_ci) + "\n";
}

nlohmann::json report_json(const LabelledReport& r) {
    const ScoreReport& s = *r.report;
    return {{"label", r.label},
            {"submission", s.submission},
            {"created_at", s.created_at},
            {"suite", s.suite},
            {"suite_hash", s.suite_hash},
            {"machine", s.machine.key()},
            {"reps", s.reps},
            {"verdict", to_string(s.verdict)},
            {"arithmetic_mean", s.summary.arithmetic},
            {"arithmetic_mean_ci95", {s.summary.arithmetic_ci.low, s.summary.arithmetic_ci.high}},
            {"geometric_mean", s.summary.geometric},
            {"geometric_mean_ci95", {s.summary.geometric_ci.low, s.summary.geometric_ci.high}}};
}

}  // namespace

std::string comparison_to_markdown(const ReportComparison& c) {
    const RegressionResult& r = c.result;
    const ScoreReport& a = *c.previous.report;
    const ScoreReport& b = *c.current.report;
    std::ostringstream md;
    md << "# trainopt compare: "
       << (r.regression ? "SIGNIFICANT REGRESSION" : "no significant regression") << "\n\n";
    md << md_report_line(c.previous) << md_report_line(c.current);
    md << "- suite: " << markdown_inline(b.suite) << ", suite hash "
       << markdown_code_span(b.suite_hash) << " in both\n";
    if (a.machine.key() != b.machine.key())
        md << "- measured on different machines: speedups move with the machine, compare "
              "reports scored side by side\n";
    md << "- allowed slowdown: " << format_fixed(100 * c.max_slowdown / (1 + c.max_slowdown), 1)
       << "% of the speedup (--max-slowdown " << format_fixed(c.max_slowdown, 2)
       << "); a regression when the one-sided upper bound of B / A is below "
       << format_fixed(r.threshold, 3) << "\n\n";
    md << "| task | A speedup (95% CI) | B speedup (95% CI) | B / A | 95% CI | upper bound | "
          "result |\n|---|---:|---:|---:|---|---:|---|\n";
    md << "| **suite (geometric mean)** | "
       << speedup_text(a.summary.geometric, a.summary.geometric_ci) << " | "
       << speedup_text(b.summary.geometric, b.summary.geometric_ci) << " | " << change_text(r.ratio)
       << " | " << change_text(r.ratio_ci.low) << " to " << change_text(r.ratio_ci.high) << " | "
       << change_text(r.upper_bound) << " | "
       << (r.upper_bound < r.threshold ? "**REGRESSION**" : "ok") << " |\n";
    for (const TaskRegression& t : r.tasks) {
        const TaskReport* ta = find_task(a, t.name);
        const TaskReport* tb = find_task(b, t.name);
        md << "| " << markdown_inline(t.name) << " | "
           << (ta ? speedup_text(ta->speedup, ta->speedup_ci) : "n/a") << " | "
           << (tb ? speedup_text(tb->speedup, tb->speedup_ci) : "n/a") << " | ";
        if (t.now_invalid) {
            md << "n/a | | | **REGRESSION: now INVALID** |\n";
            continue;
        }
        md << change_text(t.ratio) << " | " << change_text(t.ratio_ci.low) << " to "
           << change_text(t.ratio_ci.high) << " | " << change_text(t.upper_bound) << " | "
           << (t.regression ? "**REGRESSION**" : "ok") << " |\n";
    }
    md << "\nB / A is the change of the speedup (bootstrap over both reports' repetition times); "
          "the upper bound is one-sided, at 95% for the suite and 1 - 0.05/n per task "
          "(Bonferroni over n tasks).\n";
    return md.str();
}

nlohmann::json comparison_to_json(const ReportComparison& c) {
    const RegressionResult& r = c.result;
    nlohmann::json j;
    j["comparison_version"] = kComparisonVersion;
    j["a"] = report_json(c.previous);
    j["b"] = report_json(c.current);
    j["max_slowdown"] = c.max_slowdown;
    j["threshold"] = r.threshold;
    j["regression"] = r.regression;
    j["suite"] = {{"geometric_ratio", r.ratio},
                  {"geometric_ratio_ci95", {r.ratio_ci.low, r.ratio_ci.high}},
                  {"upper_bound", r.upper_bound},
                  {"regression", r.upper_bound < r.threshold}};
    j["tasks"] = nlohmann::json::array();
    for (const TaskRegression& t : r.tasks) {
        const TaskReport* tb = find_task(*c.current.report, t.name);
        j["tasks"].push_back({{"name", t.name},
                              {"spec_hash", tb ? tb->spec_hash : kUnknownHash},
                              {"a_speedup", t.previous_speedup},
                              {"b_speedup", t.current_speedup},
                              {"ratio", t.ratio},
                              {"ratio_ci95", {t.ratio_ci.low, t.ratio_ci.high}},
                              {"upper_bound", t.upper_bound},
                              {"now_invalid", t.now_invalid},
                              {"regression", t.regression}});
    }
    j["findings"] = r.lines;
    return j;
}

}  // namespace trainopt
