// The Markdown rendering of a report: what `trainopt` prints at the end of a score and what
// --md writes. Every string in a report may be untrusted (a submission's log tail or file name,
// kernel names from its meta.json, anything in a JSON report loaded back), so every one goes
// through scoring/untrusted_text.h: markdown_inline() or a fenced block, never raw.
#include <sstream>

#include "scoring/report.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

// One Markdown Findings item: label (already Markdown), the message's first line inline, and
// the rest (a log or compiler output tail) in a fenced block inside the item.
std::string md_finding(const std::string& label, const std::string& message) {
    const std::string safe = terminal_safe(message);
    const size_t eol = safe.find('\n');
    std::string item = "- " + label + markdown_inline(safe.substr(0, eol)) + "\n";
    if (eol != std::string::npos && has_text_from(safe, eol + 1))
        item += markdown_fenced_block(safe.substr(eol + 1), "  ");
    return item;
}

std::string md_summary_row(const std::string& label, size_t tasks, const SuiteSummary& s) {
    return "| " + label + " | " + std::to_string(tasks) + " | " + format_fixed(s.arithmetic, 2) +
           "x | " + format_fixed(s.arithmetic_ci.low, 2) + " - " +
           format_fixed(s.arithmetic_ci.high, 2) + " | " + format_fixed(s.geometric, 2) + "x |\n";
}

// The two suites of a --with-generated score side by side, and the generalization ratio.
std::string md_two_suites(const ScoreReport& r) {
    const TwoSuiteReport& two = *r.suites;
    size_t first = 0, second = 0;
    for (const TaskReport& t : r.tasks) (t.suite == two.first ? first : second)++;
    std::string md =
        "| suite | tasks | arithmetic mean | 95% CI | geometric mean |\n"
        "|---|---:|---:|---|---:|\n";
    md += md_summary_row(markdown_inline(two.first) + " (the agents' suite)", first,
                         two.summary.first);
    md += md_summary_row(markdown_inline(two.second) + " (drawn at scoring time)", second,
                         two.summary.second);
    md += "| **generalization** (second / first) | | **" +
          format_fixed(two.summary.generalization, 2) + "** | " +
          format_fixed(two.summary.generalization_ci.low, 2) + " - " +
          format_fixed(two.summary.generalization_ci.high, 2) + " | |\n\n";
    md +=
        "The headline is the mean of the two suites' arithmetic means, so each suite weighs "
        "half; a generalization of 1 means the submission is as fast, relative to the "
        "baseline, on shapes nobody saw as on the suite it was tuned on.\n\n";
    return md;
}

// The per-tensor distances of the final weights of the tasks that show them (shows_tensors).
std::string md_tensors(const ScoreReport& r) {
    std::string md;
    for (const TaskReport& t : r.tasks) {
        if (!shows_tensors(r, t)) continue;
        if (md.empty()) {
            md = "\n## Final weights per tensor\n\n" + std::string(kTensorTableExplanation) + "\n";
        }
        md += "\n" + markdown_inline(t.name) + ":\n\n";
        md += "| tensor | layer | relative distance | gradient from |\n|---|---:|---:|---|\n";
        for (const TensorReport& x : t.tensors) {
            md += "| " + markdown_inline(x.tensor) + " | " + layer_text(x.layer) + " | " +
                  format_scientific(x.rel) + " | " + markdown_inline(x.kernel) + " |\n";
        }
    }
    return md;
}

// The human line, the shipped references and the submission, the fastest first.
std::string md_standing(const ScoreReport& r) {
    const std::vector<StandingRow> rows = standing_rows(r);
    if (rows.empty()) return "";
    std::string md = "## Where this stands\n\n| | mean speedup | |\n|---|---:|---|\n";
    for (const StandingRow& row : rows) {
        const std::string label = row.is_submission ? "**" + row.label + "**" : row.label;
        md += "| " + label + " | " + format_fixed(row.speedup, 2) + "x | " + row.detail + " |\n";
    }
    return md + "\n" + kStandingExplanation + "\n\n";
}

}  // namespace

std::string report_to_markdown(const ScoreReport& r) {
    std::ostringstream md;
    md << "# trainopt " << command_name(r) << ": " << to_string(r.verdict) << "\n\n";
    md << "- submission: " << markdown_code_span(r.submission) << " ("
       << markdown_inline(r.submission_kind) << ")";
    if (r.command != "baseline") md << ", " << markdown_inline(build_text(r.build));
    md << "\n";
    md << "- suite: " << markdown_inline(r.suite) << ", " << r.reps
       << " repetitions per task, base seed " << r.seed << "\n";
    md << "- machine: " << r.threads << " threads, " << peak_text(r)
       << ", sandbox: " << markdown_inline(r.sandbox) << "\n";
    md << "- created: " << markdown_inline(r.created_at) << "\n\n";
    if (any_baseline_cached(r)) {
        md << kBaselineCachedNote << "\n\n";
    } else {
        md << "| | speedup | 95% CI |\n|---|---:|---|\n";
        md << "| **arithmetic mean** (headline) | **" << format_fixed(r.summary.arithmetic, 2)
           << "x** | " << format_fixed(r.summary.arithmetic_ci.low, 2) << " - "
           << format_fixed(r.summary.arithmetic_ci.high, 2) << " |\n";
        md << "| geometric mean | " << format_fixed(r.summary.geometric, 2) << "x | "
           << format_fixed(r.summary.geometric_ci.low, 2) << " - "
           << format_fixed(r.summary.geometric_ci.high, 2) << " |\n";
        md << "| human expert reference | " << format_fixed(r.human_reference, 1) << "x | score is "
           << format_fixed(r.summary.arithmetic / r.human_reference, 2) << "x the reference |\n\n";
    }
    if (r.suites) md << md_two_suites(r);
    md << md_standing(r);
    md << "| task | hot spot | valid | baseline s (median) | submission s (median) | speedup | 95% "
          "CI "
          "| speed-of-light bound | max loss diff | held-out diff | weight dist | peak MB "
          "(base/sub) |\n";
    md << "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n";
    for (const TaskReport& t : r.tasks) {
        md << "| " << markdown_inline(t.suite.empty() ? t.name : t.suite + " / " + t.name) << " | "
           << markdown_inline(t.hot_spot) << " | " << (t.valid ? "yes" : "**NO**") << " | "
           << baseline_seconds_text(t) << " | " << format_fixed(median(t.submission_seconds), 3)
           << " | " << (t.baseline_cached ? "-" : format_fixed(t.speedup, 2) + "x") << " | "
           << (t.baseline_cached
                   ? "-"
                   : format_fixed(t.speedup_ci.low, 2) + " - " + format_fixed(t.speedup_ci.high, 2))
           << " | " << speed_of_light_text(t) << " | " << std::scientific << t.max_loss_diff
           << " | " << t.max_heldout_diff << " | " << t.max_weight_distance << std::defaultfloat
           << " | " << format_fixed(t.baseline_peak_rss_mb, 0) << " / "
           << format_fixed(t.submission_peak_rss_mb, 0) << " |\n";
    }
    if (has_quality(r)) {
        md << "\n## Model quality\n\n| task | final training loss (base / sub) | held-out loss "
              "(base / sub) |\n|---|---:|---:|\n";
        for (const TaskReport& t : r.tasks) {
            md << "| " << markdown_inline(t.name) << " | " << loss_text(t.baseline_final_loss)
               << " / " << loss_text(t.submission_final_loss) << " | "
               << loss_text(t.baseline_heldout_loss) << " / "
               << loss_text(t.submission_heldout_loss) << " |\n";
        }
        md << "\nLosses in nats, medians over the repetitions: the final training loss is the "
              "mean of a run's last min(10, steps) per-step losses; the held-out loss is "
              "recomputed by the harness from the final checkpoint with the reference "
              "kernels.\n";
    }
    bool any_local = false;
    for (const TaskReport& t : r.tasks) any_local = any_local || t.check == "local";
    if (any_local) {
        md << "\nStep-local verification (tasks checked \"local\": the loss and weight columns "
              "above are the whole run's, which the check does not bound; the windows are):\n\n";
        for (const TaskReport& t : r.tasks) {
            if (t.check != "local") continue;
            md << "- " << markdown_inline(t.name) << ": " << t.windows_checked
               << " windows recomputed with the reference kernels; largest loss deviation "
               << format_scientific(t.max_window_loss_diff) << " nats, largest state deviation "
               << format_scientific(t.max_window_state_rel) << ", smallest AdamW step "
               << format_scientific(t.min_window_adam_step) << "\n";
        }
    }
    md << md_tensors(r);
    bool any_notes = !r.warnings.empty() || !r.rejected.empty();
    for (const TaskReport& t : r.tasks)
        any_notes = any_notes || !t.reasons.empty() || !t.warnings.empty();
    if (any_notes) {
        md << "\n## Findings\n\n";
        for (const std::string& w : r.rejected) md << md_finding("REJECTED: ", w);
        for (const std::string& w : r.warnings) md << md_finding("WARNING: ", w);
        for (const TaskReport& t : r.tasks) {
            const std::string name = markdown_inline(t.name);
            for (const std::string& reason : t.reasons)
                md << md_finding(name + ": INVALID: ", reason);
            for (const std::string& w : t.warnings) md << md_finding(name + ": warning: ", w);
        }
    }
    md << "\nTimes are wall seconds measured by the harness around each trainer process; "
          "per-kernel times inside trainers are self-reported and advisory.\n";
    if (const std::string phases = phases_text(r); !phases.empty()) md << "\n" << phases << ".\n";
    return md.str();
}

}  // namespace trainopt
