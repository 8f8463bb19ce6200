// The plain-text rendering of a report: what `trainopt score` and `trainopt verify` print at the
// end. It says what the Markdown rendering says (report_markdown.cpp) without Markdown syntax or
// its backslash escapes, which a terminal would show literally ("\|delta\|"). Every string in a
// report may be untrusted, so every one goes through terminal_safe_line() (one line) or
// terminal_safe() (a multi-line message, its continuation lines indented so they cannot pass
// for a line of trainopt's own).
#include <algorithm>
#include <sstream>

#include "scoring/report.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

// The farthest tensors a terminal shows per task; the Markdown and JSON reports hold them all.
constexpr size_t kTerminalTensorRows = 8;

// An untrusted string for a table cell or an inline value: one line, no tabs.
std::string cell(std::string_view text) {
    std::string out = terminal_safe_line(text);
    std::replace(out.begin(), out.end(), '\t', ' ');
    return out;
}

// One finding: label, then the message with its continuation lines (a log or compiler output
// tail) indented below it.
std::string text_finding(const std::string& label, const std::string& message) {
    std::string safe = terminal_safe(message);
    while (!safe.empty() && (safe.back() == '\n' || safe.back() == ' ')) safe.pop_back();
    for (size_t at = safe.find('\n'); at != std::string::npos; at = safe.find('\n', at + 1))
        safe.insert(at + 1, "      ");
    return "  " + label + safe + "\n";
}

std::vector<std::string> summary_row(const std::string& label, const SuiteSummary& s) {
    return {label, format_fixed(s.arithmetic, 2) + "x",
            format_fixed(s.arithmetic_ci.low, 2) + " - " + format_fixed(s.arithmetic_ci.high, 2),
            format_fixed(s.geometric, 2) + "x"};
}

std::string text_two_suites(const ScoreReport& r) {
    const TwoSuiteReport& two = *r.suites;
    std::vector<std::vector<std::string>> rows = {
        {"suite", "arithmetic mean", "95% CI", "geometric mean"},
        summary_row(cell(two.first) + " (the agents' suite)", two.summary.first),
        summary_row(cell(two.second) + " (drawn at scoring time)", two.summary.second)};
    rows.push_back({"generalization (second / first)", format_fixed(two.summary.generalization, 2),
                    format_fixed(two.summary.generalization_ci.low, 2) + " - " +
                        format_fixed(two.summary.generalization_ci.high, 2),
                    ""});
    return text_table(rows, {false, true, false, true}, "  ") + "\n" +
           wrapped(
               "The headline is the mean of the two suites' arithmetic means, so each suite "
               "weighs half; a generalization of 1 means the submission is as fast, relative to "
               "the baseline, on shapes nobody saw as on the suite it was tuned on.",
               "  ") +
           "\n";
}

std::string text_standing(const ScoreReport& r) {
    const std::vector<StandingRow> rows = standing_rows(r);
    if (rows.empty()) return "";
    std::vector<std::vector<std::string>> table = {{"", "mean speedup", ""}};
    for (const StandingRow& row : rows) {
        table.push_back({(row.is_submission ? "> " : "  ") + row.label,
                         format_fixed(row.speedup, 2) + "x", row.detail});
    }
    // the human line has no detail: no blanks left at the end of its line or the header's
    std::string lines = text_table(table, {false, true, false}, "  ");
    for (size_t eol = lines.find('\n'); eol != std::string::npos; eol = lines.find('\n', eol + 1)) {
        size_t end = eol;
        while (end > 0 && lines[end - 1] == ' ') end--;
        lines.erase(end, eol - end);
        eol = end;
    }
    return "Where this stands:\n" + lines + wrapped(kStandingExplanation, "  ") + "\n";
}

std::string text_tasks(const ScoreReport& r) {
    std::vector<std::vector<std::string>> rows = {
        {"task", "hot spot", "valid", "baseline s", "submission s", "speedup", "95% CI",
         "speed of light", "max loss diff", "held-out diff", "weight dist", "peak MB base/sub"}};
    for (const TaskReport& t : r.tasks) {
        rows.push_back(
            {cell(t.suite.empty() ? t.name : t.suite + " / " + t.name), cell(t.hot_spot),
             t.valid ? "yes" : "NO", baseline_seconds_text(t),
             format_fixed(median(t.submission_seconds), 3),
             t.baseline_cached ? "-" : format_fixed(t.speedup, 2) + "x",
             t.baseline_cached
                 ? "-"
                 : format_fixed(t.speedup_ci.low, 2) + " - " + format_fixed(t.speedup_ci.high, 2),
             speed_of_light_text(t), format_scientific(t.max_loss_diff),
             format_scientific(t.max_heldout_diff), format_scientific(t.max_weight_distance),
             format_fixed(t.baseline_peak_rss_mb, 0) + " / " +
                 format_fixed(t.submission_peak_rss_mb, 0)});
    }
    return text_table(
        rows, {false, false, false, true, true, true, false, true, true, true, true, true}, "  ");
}

std::string text_quality(const ScoreReport& r) {
    std::vector<std::vector<std::string>> rows = {
        {"task", "final training loss (base / sub)", "held-out loss (base / sub)"}};
    for (const TaskReport& t : r.tasks) {
        rows.push_back(
            {cell(t.name),
             loss_text(t.baseline_final_loss) + " / " + loss_text(t.submission_final_loss),
             loss_text(t.baseline_heldout_loss) + " / " + loss_text(t.submission_heldout_loss)});
    }
    return "\nModel quality:\n" + text_table(rows, {false, true, true}, "  ") +
           wrapped(
               "Losses in nats, medians over the repetitions: the final training loss is the "
               "mean of a run's last min(10, steps) per-step losses; the held-out loss is "
               "recomputed by the harness from the final checkpoint with the reference kernels.",
               "  ");
}

std::string text_tensors(const ScoreReport& r) {
    std::string out;
    for (const TaskReport& t : r.tasks) {
        if (!shows_tensors(r, t)) continue;
        if (out.empty())
            out = "\nFinal weights per tensor:\n" + wrapped(kTensorTableExplanation, "  ");
        const size_t shown = std::min(kTerminalTensorRows, t.tensors.size());
        out += "\n  " + cell(t.name) +
               (shown < t.tensors.size()
                    ? " (the " + std::to_string(shown) + " farthest of " +
                          std::to_string(t.tensors.size()) + "; all in the --md and --json reports)"
                    : "") +
               ":\n";
        std::vector<std::vector<std::string>> rows = {
            {"tensor", "layer", "relative distance", "gradient from"}};
        for (size_t i = 0; i < shown; i++) {
            const TensorReport& x = t.tensors[i];
            rows.push_back(
                {cell(x.tensor), layer_text(x.layer), format_scientific(x.rel), cell(x.kernel)});
        }
        out += text_table(rows, {false, true, true, false}, "    ");
    }
    return out;
}

std::string text_local(const ScoreReport& r) {
    std::string out;
    for (const TaskReport& t : r.tasks) {
        if (t.check != "local") continue;
        out += "  " + cell(t.name) + ": " + std::to_string(t.windows_checked) +
               " windows recomputed with the reference kernels; largest loss deviation " +
               format_scientific(t.max_window_loss_diff) + " nats, largest state deviation " +
               format_scientific(t.max_window_state_rel) + ", smallest AdamW step " +
               format_scientific(t.min_window_adam_step) + "\n";
    }
    if (out.empty()) return out;
    return "\nStep-local verification (tasks checked \"local\": the loss and weight columns above "
           "are the whole run's,\nwhich the check does not bound; the windows are):\n" +
           out;
}

std::string text_findings(const ScoreReport& r) {
    std::string out;
    for (const std::string& w : r.rejected) out += text_finding("REJECTED: ", w);
    for (const std::string& w : r.warnings) out += text_finding("WARNING: ", w);
    for (const TaskReport& t : r.tasks) {
        const std::string name = cell(t.name);
        for (const std::string& reason : t.reasons)
            out += text_finding(name + ": INVALID: ", reason);
        for (const std::string& w : t.warnings) out += text_finding(name + ": warning: ", w);
    }
    return out.empty() ? out : "\nFindings:\n" + out;
}

}  // namespace

std::string report_to_text(const ScoreReport& r) {
    std::ostringstream out;
    out << "trainopt " << command_name(r) << ": " << to_string(r.verdict) << "\n\n";
    out << "  submission: " << cell(r.submission) << " (" << cell(r.submission_kind) << ")";
    if (r.command != "baseline") out << ", " << cell(build_text(r.build));
    out << "\n";
    out << "  suite: " << cell(r.suite) << ", " << r.reps
        << (r.reps == 1 ? " repetition" : " repetitions") << " per task, base seed " << r.seed
        << "\n";
    out << "  machine: " << r.threads << " threads, " << peak_text(r)
        << ", sandbox: " << cell(r.sandbox) << "\n";
    out << "  created: " << cell(r.created_at) << "\n";
    // refused before any run: no numbers, only the reasons
    if (!r.rejected.empty()) return out.str() + text_findings(r);
    if (any_baseline_cached(r))
        out << "\n" << wrapped(kBaselineCachedNote, "  ");
    else
        out << "\n"
            << text_table(
                   {{"", "speedup", "95% CI"},
                    {"arithmetic mean (headline)", format_fixed(r.summary.arithmetic, 2) + "x",
                     format_fixed(r.summary.arithmetic_ci.low, 2) + " - " +
                         format_fixed(r.summary.arithmetic_ci.high, 2)},
                    {"geometric mean", format_fixed(r.summary.geometric, 2) + "x",
                     format_fixed(r.summary.geometric_ci.low, 2) + " - " +
                         format_fixed(r.summary.geometric_ci.high, 2)},
                    {"human expert reference", format_fixed(r.human_reference, 1) + "x",
                     "score is " + format_fixed(r.summary.arithmetic / r.human_reference, 2) +
                         "x the reference"}},
                   {false, true, false}, "  ");
    out << "\n";
    if (r.suites) out << text_two_suites(r);
    out << text_standing(r);
    if (!r.tasks.empty()) out << text_tasks(r);
    if (has_quality(r)) out << text_quality(r);
    out << text_local(r) << text_tensors(r) << text_findings(r);
    out << "\n"
        << wrapped(
               "Times are wall seconds measured by the harness around each trainer process; "
               "per-kernel times inside trainers are self-reported and advisory.",
               "");
    if (const std::string phases = phases_text(r); !phases.empty())
        out << wrapped(phases + ".", "");
    return out.str();
}

}  // namespace trainopt
