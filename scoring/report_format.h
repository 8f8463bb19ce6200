// Number and text helpers shared by the Markdown and HTML renderings of a report
// (report_markdown.cpp, report_html.cpp). Not for other callers.
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "scoring/report.h"

namespace trainopt {

// The command the report is of, for its heading: "score", "verify", ... (a loaded report's
// command is one of kReportCommands; anything else shows as "score").
std::string command_name(const ScoreReport& r);

// The sgemm peak in the report's header: "measured peak 181.3 GFLOP/s", or "peak not measured"
// (verify does not measure it).
std::string peak_text(const ScoreReport& r);

// How a trainer was obtained, for a report's header: "built in 56.8 s" or "reused from the
// build cache (key aaf7e5694249, built 2026-12-02T17:32:33Z in 56.8 s)". Plain text: the key and
// date come from trainopt's own cache, but a loaded report is untrusted, so callers escape it.
std::string build_text(const BuildInfo& build);

// " (compiled N of M files, the others from the workspace's compile cache)" for an incremental
// build whose compilations were counted; empty otherwise.
std::string compile_counts_text(const BuildInfo& build);

// A per-tensor row's layer: the number, or "-" for a tensor not stacked over layers.
std::string layer_text(int layer);

// What the per-tensor table of the final weights shows, one paragraph.
constexpr const char* kTensorTableExplanation =
    "The distance of each parameter tensor (per layer) of the submission's final weights from "
    "the reference's, relative to the reference's update of it (||w_sub - w_ref|| / ||w_ref - "
    "w_init||), the farthest first, with the backward kernels that write its gradient. A wrong "
    "backward kernel shows first in the tensors it writes and in those before it in the model "
    "(earlier layers, the embeddings); over a whole run every tensor drifts after them, so the "
    "farthest tensors are where to look first, not a proof.";

// One row of the "where this stands" block (score --references): the human expert line, each
// shipped reference and the submission, the fastest first. Labels are trainopt's own words.
struct StandingRow {
    std::string label;
    double speedup = 0;          // the mean speedup; for the human line, the line itself
    std::string detail;          // "95% CI 7.10 - 10.20", a reference's verdict, or ""
    bool is_submission = false;  // the row of the report's own submission
};
// Empty when the report has no references.
std::vector<StandingRow> standing_rows(const ScoreReport& r);
constexpr const char* kStandingExplanation =
    "The shipped reference submissions scored in the same invocation: the same suite, seeds and "
    "machine, so their mean speedups compare with this one. The human expert line is what a "
    "skilled engineer reaches in 4-8 hours.";

// Where the score's wall time went, one line: "wall time 312 s: timed runs 265 s (85%), build
// 20 s, ..."; empty for a report without phase times.
std::string phases_text(const ScoreReport& r);

// v with exactly `digits` decimals ("%.*f").
std::string format_fixed(double v, int digits);

// A time as UTC ISO 8601 ("2026-12-02T14:00:00Z"), and now: reports' and records' dates.
std::string utc_iso(std::time_t t);
std::string utc_now();

// Deviations such as 1.23e-05 ("0" for zero): short and never wrapped.
std::string format_scientific(double v);

// The speed-of-light column: "110x", or "n/a" when the machine peak was not measured
// (`verify` does not measure it).
std::string speed_of_light_text(const TaskReport& t);

// Said wherever a report shows no speedup because the baseline's outputs were reused.
constexpr const char* kBaselineCachedNote =
    "No speedup: the baseline's reference outputs were reused from the baseline cache (verify "
    "--seed), so the baseline did not run and nothing was timed against it. Timings are never "
    "cached; `trainopt score`, or verify with --no-baseline-cache, measures speed.";

// True when some task reused the baseline's outputs (TaskReport::baseline_cached).
bool any_baseline_cached(const ScoreReport& r);

// The baseline time column: the median with 2 decimals, or "cached" when the baseline did not
// run.
std::string baseline_seconds_text(const TaskReport& t);

// The ratio of the medians, median(baseline) / median(submission), whether or not the task is
// valid: what was measured, for showing next to an INVALID task's speedup of 0. 0 without runs.
double measured_speedup(const TaskReport& t);

// The median of the finite values (the repetitions where a quality was measured); NaN when
// there is none.
double median_measured(const std::vector<double>& values);

// A loss column: the median of the measured values with 4 decimals, or "n/a".
std::string loss_text(const std::vector<double>& values);

// True when some task of the report has a measured final or held-out loss (reports from before
// those fields have none).
bool has_quality(const ScoreReport& r);

// terminal_safe_line(text) cut to at most max_chars code points, with "\u2026" (an ellipsis)
// as the last one when anything was cut: for labels with a fixed amount of room. Escape the
// result for its format as usual.
std::string clipped_line(std::string_view text, size_t max_chars);

// True when s holds something besides blanks from pos on (a message has more than its first
// line worth showing).
bool has_text_from(const std::string& s, size_t pos);

// Rows (the first the header) in columns padded to their widest cell, two spaces apart; the
// columns whose `right` is true are right-aligned. For a terminal: the cells must already be
// safe (terminal_safe_line).
std::string text_table(const std::vector<std::vector<std::string>>& rows,
                       const std::vector<bool>& right, const std::string& indent);

// A paragraph of trusted text, wrapped at 100 columns, each line starting with `indent`.
std::string wrapped(const std::string& text, const std::string& indent);

}  // namespace trainopt
