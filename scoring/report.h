// The score report: plain data, its versioned JSON form, and the Markdown and HTML renderings.
// One file per concern: report.cpp (finalize_report, load_report), report_json.cpp,
// report_markdown.cpp, report_html.cpp (with report_svg.cpp for its charts); reports are
// written with write_file_atomic (atomic_file.h).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "contract/result.h"
#include "scoring/atomic_file.h"  // write_file_atomic, which every writer of a report uses
#include "scoring/machine_id.h"
#include "scoring/machine_peak.h"
#include "scoring/spec_hash.h"
#include "scoring/stats.h"

namespace trainopt {

constexpr int kReportSchemaVersion = 1;
// The human expert reference line: the mean speedup a skilled engineer reaches in 4-8 hours
// (TASK.md, docs/scoring.md); every report shows the score as a multiple of it.
constexpr double kHumanReferenceSpeedup = 4.0;

// The speed-of-light backstop (docs/scoring.md): the task's matmul FLOPs (step_gflop x steps, a
// lower bound on what training needs) at the machine's measured FMA ceiling take a time no run
// can beat. A submission run faster than that time / (1 + kBackstopMargin) did not do the work,
// whatever its outputs look like, and makes the task INVALID with kBackstopReason. The margin
// covers the ceiling's measurement uncertainty with room (scripts/measure-peak-margin.sh).
constexpr double kBackstopMargin = 0.30;
constexpr const char* kBackstopReason = "faster than the machine can do the task's FLOPs";

// The verdict on a whole score. Only the reports' text (JSON, Markdown, HTML) spells it, as
// to_string gives it; the JSON schema is unchanged.
enum class Verdict {
    valid,       // complete, and every task verified on every repetition
    invalid,     // complete, and some task failed verification or the speed-of-light backstop
    rejected,    // refused before any run: intake, build or binary audit
    incomplete,  // still running, or interrupted
};
std::string to_string(Verdict verdict);  // "VALID", "INVALID", "REJECTED", "INCOMPLETE"

// One parameter tensor of a run's final weights (one layer's slice of a tensor stacked over
// layers): its distance from the reference's, relative to the reference's update of it
// (||w_sub - w_ref|| / ||w_ref - w_init||, harness/verify.h), and the kernels whose backward
// writes its gradient: where to look when a submission's weights went wrong.
struct TensorReport {
    std::string tensor;  // a name of the canonical layout: "wte", "qkvw", ...
    int layer = -1;      // -1: a tensor not stacked over layers
    double rel = 0;      // infinite: the reference did not move it and the submission did
    std::string kernel;  // e.g. "matmul_backward of the attention's qkv projection"
};

struct TaskReport {
    std::string name;
    // the suite the task belongs to in a report of two suites (ScoreReport::suites); empty in a
    // report of one suite
    std::string suite;
    std::string hot_spot;
    bool valid = true;
    std::vector<std::string> reasons;   // why invalid
    std::vector<std::string> warnings;  // flagged, not invalidating
    std::vector<uint64_t> seeds;
    // the baseline's reference outputs were reused from the baseline cache (verify --seed): the
    // baseline did not run, baseline_seconds holds no time for those repetitions and the task
    // has no speedup. Added within schema 1 (absent: false).
    bool baseline_cached = false;
    std::vector<double> baseline_seconds;  // per repetition, parent-measured wall time
    std::vector<double> submission_seconds;
    double speedup = 0;   // 0 when invalid
    Interval speedup_ci;  // bootstrap 95%
    double step_gflop = 0;
    int steps = 0;
    double speed_of_light_seconds = 0;  // all steps at the measured machine peak
    double speed_of_light_speedup = 0;  // baseline median / speed_of_light_seconds
    // the backstop: all steps at the FMA ceiling (0 when no ceiling was measured); a run faster
    // than backstop_seconds / (1 + margin) invalidates the task
    double backstop_seconds = 0;
    double backstop_fraction = 0;  // backstop_seconds / fastest submission run; 1 = at the bound
    double max_loss_diff = 0;
    int worst_loss_step = -1;  // the step of max_loss_diff (-1: unknown)
    // the first step whose loss deviation is over the task's loss_abs, and that deviation, in
    // the repetition `tensors` come from (-1: none)
    int first_loss_step_over = -1;
    double first_loss_diff_over = 0;
    double max_heldout_diff = 0;
    double max_weight_distance = 0;
    // Per tensor, the farthest first, of one repetition: the invalid one if any, else the one
    // with the largest weight distance. Tasks checked "trajectory" only; empty in reports from
    // before it. Shown after a failure and in a verify report.
    std::vector<TensorReport> tensors;
    // The trained model's quality, per repetition in the order of `seeds`: the final training
    // loss (mean of a run's last min(10, steps) per-step losses) and the held-out loss the
    // harness recomputed with the reference kernels, nats. NaN (null in the JSON) for a
    // repetition whose outputs were not compared; empty in reports from before these fields.
    std::vector<double> baseline_final_loss;
    std::vector<double> submission_final_loss;
    std::vector<double> baseline_heldout_loss;
    std::vector<double> submission_heldout_loss;
    double baseline_peak_rss_mb = 0;  // peak resident memory over the repetitions
    double submission_peak_rss_mb = 0;
    // self-reported by the trainers (advisory, shown only for orientation)
    std::map<std::string, double> baseline_kernel_seconds;
    std::map<std::string, double> submission_kernel_seconds;
    // how the task is verified ("trajectory" or "local"); local: the windows recomputed with the
    // reference kernels over all repetitions, and their largest deviations
    std::string check = "trajectory";
    int windows_checked = 0;
    double max_window_loss_diff = 0;
    double max_window_state_rel = 0;
    double max_window_tensor_rel = 0;  // the per-tensor (per-layer) weight distance
    double min_window_adam_step = 0;   // the reference's smallest AdamW step from a window state
    // SHA-256 of the task's canonical spec (spec_hash.h); kUnknownHash in reports from before it
    std::string spec_hash = kUnknownHash;
};

// A task file of a generated suite as it was scored, so the suite can be scored again exactly:
// the shapes follow from the seed, but the step counts and tolerances were sized and calibrated
// on the scoring machine (`trainopt tasks export` writes these files back out).
struct GeneratedTaskFile {
    std::string name;
    std::string toml;
};

// A report of two suites (`score --with-generated`): the agents' suite and one generated at
// scoring time, each task marked with its suite (TaskReport::suite).
struct TwoSuiteReport {
    std::string first;        // the suite agents saw, e.g. "default"
    std::string second;       // the generated one, e.g. "generated:1234:8"
    TwoSuiteSummary summary;  // set by finalize_report; summary.headline is ScoreReport::summary
};

// The commands whose report a ScoreReport is; the reports' headings name it.
constexpr const char* kReportCommands[] = {"score", "verify", "baseline", "ci", "batch"};

// How the submission's trainer was obtained (harness/build_cache.h). Added within schema 1: a
// report without it reads as a trainer built on the spot, with no cache key.
struct BuildInfo {
    bool from_cache = false;  // reused from the build cache instead of built by this score
    std::string cache_key;    // the build's cache key (SHA-256 hex); empty: none computed
    double seconds = 0;       // the build's wall time (reused: the original build's)
    std::string built_at;     // UTC, ISO 8601, when the trainer was built; empty: unknown
    // built incrementally (`check`, `verify`: harness/incremental.h), through the workspace's
    // compile cache; never for `score` or `ci`
    bool incremental = false;
    // an incremental build's compilations as ccache counted them (informational: the build
    // wrote the count); -1: not known
    int compiled_files = -1;
    int files_from_compile_cache = -1;
};

// A shipped reference submission scored next to the submission (`score --references`): the
// same suite, seeds and machine, in the same invocation, so its speedup is comparable. Its
// code is never shown; only these numbers.
struct ReferenceScore {
    std::string role;        // "example" or "expert" (kReferenceRoles)
    std::string submission;  // where it was scored from
    Verdict verdict = Verdict::incomplete;
    SuiteSummary summary;  // its headline, as the submission's
};

// The roles of the shipped references and what the reports call them.
constexpr const char* kReferenceRoles[] = {"example", "expert"};
// What the reports call a reference: its role, no word about how it is fast.
std::string reference_label(const std::string& role);

// Where a score's wall time went, seconds on the harness's monotonic clock. The score measures
// only timed_runs; the rest is what it costs around them. All 0 in reports from before it.
struct PhaseSeconds {
    double total = 0;         // from the start of the score to its last report
    double setup = 0;         // trusted inputs, suite, sandbox, work directory
    double build = 0;         // intake, build (or the build cache), binary audit
    double machine = 0;       // the FMA ceiling and the sgemm peak
    double task_data = 0;     // generating each task's training and held-out tokens
    double timed_runs = 0;    // baseline and submission runs, spawn to reap: what is scored
    double verification = 0;  // comparing outputs, held-out losses, step-local replays
    double other() const;     // total minus the phases: reading outputs, reports, cleanup
};

struct ScoreReport {
    int schema_version = kReportSchemaVersion;
    std::string command = "score";  // one of kReportCommands: "trainopt verify: VALID"
    std::string created_at;         // UTC, ISO 8601
    std::string submission;
    std::string submission_kind;
    BuildInfo build;  // the submission's trainer: built now or reused (not for "baseline")
    std::string suite;
    // suite_hash() of the suite's tasks as scored (kUnknownHash in reports from before it)
    std::string suite_hash = kUnknownHash;
    std::string sandbox;      // "bubblewrap" or "none"
    MachineIdentity machine;  // host, CPU model, CPUs; unknown in reports from before it
    int threads = 0;
    int reps = 0;
    uint64_t seed = 0;       // base seed the per-repetition seeds were drawn from
    double peak_gflops = 0;  // OpenBLAS sgemm: the speed-of-light column, for orientation
    FmaCeiling fma_ceiling;  // the backstop's bound; gflops 0 when not measured
    // set by finalize_report to kBackstopMargin, recorded for readers (not read back)
    double backstop_margin = kBackstopMargin;
    bool complete = false;                  // false while running or when interrupted
    Verdict verdict = Verdict::incomplete;  // set by finalize_report
    SuiteSummary summary;                   // the headline; over two suites, each suite weighs half
    std::optional<TwoSuiteReport> suites;   // set when two suites were scored together
    std::string generated_suite;            // "generated:SEED:N" when one was scored, else empty
    std::vector<GeneratedTaskFile> generated_tasks;
    double human_reference = kHumanReferenceSpeedup;
    // the shipped references scored alongside (score --references); empty otherwise
    std::vector<ReferenceScore> references;
    PhaseSeconds phases;  // the submission's score, references not included
    std::vector<std::string> warnings;
    std::vector<std::string> rejected;  // non-empty: refused before any run (intake, build, audit)
    std::vector<TaskReport> tasks;
};

// A task's per-repetition times, as the statistics take them (stats.h).
TaskTimes times_of(const TaskReport& task);

// Recomputes speedups, CIs and the verdict from the per-repetition data, after applying the
// speed-of-light backstop (which may mark tasks INVALID; idempotent).
void finalize_report(ScoreReport& report);

// The versioned JSON form (report_json.cpp). Reading it back validates the data and runs
// finalize_report, so a loaded report is as consistent as a fresh one.
nlohmann::json report_to_json(const ScoreReport& report);
// A trainer's BuildInfo as the reports' "build" object, and back (absent fields: defaults).
nlohmann::json build_info_to_json(const BuildInfo& build);
BuildInfo build_info_from_json(const nlohmann::json& j);
Result<ScoreReport> report_from_json(const nlohmann::json& j);
// Reads and parses a saved JSON report (report.cpp).
Result<ScoreReport> load_report(const std::string& path);

// The Markdown rendering (report_markdown.cpp): headline, task table, findings.
std::string report_to_markdown(const ScoreReport& report);
// The plain-text rendering for a terminal (report_text.cpp): what report_to_markdown says,
// without Markdown syntax or escapes, every string through terminal_safe.
std::string report_to_text(const ScoreReport& report);
// Whether a task's per-tensor table is shown: after a failure, and in a verify report.
bool shows_tensors(const ScoreReport& report, const TaskReport& task);
// The HTML page (report_html.cpp): self-contained (inline CSS and SVG, no scripts, nothing
// loaded from elsewhere); every string from the report is escaped.
std::string report_to_html(const ScoreReport& report);

}  // namespace trainopt
