// `trainopt calibrate`: measures, per task, how far a legitimate reordering of the reference
// lands from it and how far each cheat lands, under every check of harness/verify.h and
// harness/step_check.h, and recommends the check and tolerances that separate them
// (docs/tolerances.md, "Calibrating a task"). Runs only built-in code (harness/calibrate_twins.h),
// in-process.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/calibrate_twins.h"
#include "tasks/task_spec.h"

namespace trainopt {

// The rule: a metric separates a cheat when the cheat's smallest deviation over the seeds is at
// least kCalibrationMargin^2 times the legitimate twin's largest; the tolerance is then the
// geometric mean of the legitimate maximum and the smallest deviation of the cheats it separates,
// so it sits at least kCalibrationMargin times above every legitimate value measured and as far
// below every cheating one. Suite-wide cheats set tolerances on one task only: the one that
// separates them best, when no task's tolerances catch them already.
constexpr double kCalibrationMargin = 3.0;

// Generated suites ask more of the legitimate side: a tolerance must sit at least this many times
// above the reordered twin's largest deviation, and a cheat is separated only at this times
// kCalibrationMargin. Nobody measures real trainers on a task drawn at scoring time, and they land
// farther from the reference than the twin does: on generated tasks blas-tbb's loss trajectory
// reached 26x the twin's (2.0e-4 at step 1990 of a 2000-step task, 3x past bf16's own deviation)
// and the expert's held-out loss 3.8x the 4-ulp floor (docs/tolerances.md).
constexpr double kGeneratedLegitimateMargin = 10.0;

// Deviations below this count as this (nats, or relative): rounding of the loss itself. Keeps a
// legitimate deviation of exactly 0 from giving a tolerance of 0.
constexpr double kDeviationFloor = 1e-7;

// For the losses (nats) the floor is this many fp32 units in the last place of the task's
// initial loss, ln(vocab_size): a legitimate trainer's recomputed loss differs from the
// reference's by a few ulps even where the reordered twin happens to match it exactly (2 ulps,
// 1.07e-6 nats at 4.03, on a generated task the twin had calibrated to 9.5e-7).
constexpr double kLossFloorUlps = 4;

// What one twin's run deviates from the reference run of the same seed.
enum class Metric {
    loss,        // trajectory: max |loss - loss_ref| over the run, nats (loss_abs)
    heldout,     // both: |heldout - heldout_ref| of the final weights, nats (heldout_abs, _band)
    weights,     // trajectory: ||w - w_ref|| / ||w_ref - w_init|| (weights_rel)
    step_loss,   // local: max over windows of the window's max loss diff (step_loss_abs)
    step_state,  // local: max over windows of WindowDeviation::state_rel (step_state_rel)
};
constexpr int kNumMetrics = 5;
const char* metric_name(Metric metric);  // "loss", "heldout", ...

// The deviation below which a metric's legitimate value counts as the floor: kLossFloorUlps of
// the initial loss for the losses, kDeviationFloor for the relative distances.
double deviation_floor(Metric metric, const TaskSpec& task);

using Deviations = std::array<double, kNumMetrics>;

struct TwinResult {
    std::string name;
    std::string description;
    TwinKind kind = TwinKind::legitimate;
    bool suite_wide = false;        // cheating: one task of the suite catching it is enough
    std::vector<Deviations> seeds;  // per seed, in the order of TaskCalibration::seeds
    Deviations summary{};           // legitimate: max over seeds; cheating: min over seeds
};

// One metric of a check, and the tolerance the rule gives it.
struct MetricCalibration {
    Metric metric = Metric::loss;
    std::string key;                     // the [tolerances] key: loss_abs, heldout_band, ...
    double legitimate = 0;               // the legitimate twin's largest deviation
    double tolerance = 0;                // recommended
    double smallest_separated = 0;       // the smallest deviation of the cheats the rule placed
                                         // the tolerance below (infinite: none)
    double current = 0;                  // the task's value today
    std::vector<double> ratios;          // per cheat (TaskCalibration::twins order, cheats only):
                                         // cheat minimum / max(legitimate, kDeviationFloor)
    std::vector<std::string> separates;  // the cheats exceeding the tolerance by the margin
};

struct CheckCalibration {
    CheckKind check = CheckKind::trajectory;
    std::vector<MetricCalibration> metrics;
    std::vector<std::string> missed;  // cheats no metric separates (suite-wide ones included)

    // Separates every cheat that must be caught on each task.
    bool separates_task_cheats(const std::vector<TwinResult>& twins) const;
};

struct TaskCalibration {
    std::string task;
    int steps = 0;
    std::vector<uint64_t> seeds;
    int windows = 0;  // local windows actually checked per run (at most steps / window_steps)
    int window_steps = 0;
    std::vector<TwinResult> twins;  // the legitimate twin first, then the cheats
    CheckCalibration trajectory;
    CheckCalibration local;
    std::optional<CheckKind> recommended;  // none: refused (legitimate twin only: the task's
                                           // check, when its tolerances admit the twin)
    std::string tightened_by;              // the suite-wide cheat this task catches for the suite
    std::string verdict;                   // why this check, or what to change
    Tolerances tolerances;                 // the task's, with the recommended check's replaced
};

struct CalibrationReport {
    std::string suite;
    uint64_t base_seed = 0;
    int seeds = 0;
    std::vector<TaskCalibration> tasks;
    double legitimate_margin = kCalibrationMargin;  // CalibrateOptions::legitimate_margin
    bool whole_suite = true;                        // false: --task chose some of its tasks
    std::vector<std::string> suite_problems;        // a suite-wide cheat no accepted task catches
                                                    // (judged on the whole suite only)

    bool accepted() const;  // every task has a recommended check and no suite problem
};

struct CalibrateOptions {
    std::vector<std::string> only_tasks;  // empty: every task of the suite
    int seeds = 5;
    uint64_t base_seed = 1;
    int threads = 0;       // 0: all cores
    bool progress = true;  // a line on stderr per finished run
    // how many times above the legitimate twin's largest deviation a tolerance must sit
    // (a cheat is separated at this times kCalibrationMargin): kCalibrationMargin, or
    // kGeneratedLegitimateMargin for tasks drawn at scoring time
    double legitimate_margin = kCalibrationMargin;
    // train the reference and the legitimate twin only, on many seeds cheaply: each task is then
    // judged on whether its tolerances today admit the twin (no recommendation)
    bool legitimate_only = false;
    bool (*stop)() = nullptr;  // asked between steps: true ends the calibration (an interrupt)
};

// Trains the reference and every twin on `seeds` seeds of each task (the seeds `trainopt score
// --seed base_seed` gives the task), in parallel, and applies the rule.
Result<CalibrationReport> calibrate_suite(const Suite& suite, const CalibrateOptions& options);

// The rule applied again to saved measurements: the contents of calibration_json files (names[i]
// names json_texts[i] in messages), whose tasks must be tasks of `suite`. Trains nothing.
Result<CalibrationReport> recalibrate(const Suite& suite,
                                      const std::vector<std::string>& json_texts,
                                      const std::vector<std::string>& names);

// The tables printed by `trainopt calibrate`, one per task, and the verdicts.
std::string calibration_table(const CalibrationReport& report);

std::string calibration_json(const CalibrationReport& report);

// The [verify] and [tolerances] sections to paste into the task file (empty when refused).
std::string tolerance_snippet(const TaskCalibration& task);

}  // namespace trainopt
