// The baseline time a batch's submission run is compared with (docs/batch.md, "Re-timing").
// The first calibration times the baseline once per task and seed. A re-timing later runs it
// once per task and measures the drift factor: the median over the tasks of each run's time
// over the median of that task's first times. A factor that strays from the previous one by
// more than kDriftRecheck is measured once more and the smaller of the two kept. A submission's
// repetition is compared with the first calibration's time of its task and seed, scaled by the
// factor interpolated linearly, by the harness's clock, between the re-timings before and
// after it.
#pragma once

#include <vector>

namespace trainopt {

// One timed run of the baseline: when it ran (the middle of the run) and its wall time.
struct BaselineTiming {
    double at_unix = 0;
    double seconds = 0;
};
using Calibration = std::vector<std::vector<BaselineTiming>>;  // [task][rep]: the first one

// How fast the baseline was at one moment relative to the first calibration (1.03: 3% slower).
struct DriftPoint {
    double at_unix = 0;
    double factor = 1;
};

// A factor that differs from the previous one by more than this (relative) is measured again.
// The baseline's speed on a shared VM has bursts: a minute in which some tasks ran 30-50%
// slower, against a run-to-run spread of a few percent (docs/batch.md).
constexpr double kDriftRecheck = 0.10;

// The first calibration's own point: factor 1 at the middle of its runs.
DriftPoint first_drift_point(const Calibration& first);

// A re-timing's point, from one run per task (the suite's order): at the middle of the runs,
// the median over tasks of runs[t].seconds over the median of first[t]'s times. Tasks without
// positive times on both sides are left out; with none left the factor is NaN.
DriftPoint drift_point(const Calibration& first, const std::vector<BaselineTiming>& runs);

// Whether `factor` strays from `previous` by more than kDriftRecheck (or is not finite).
bool drift_needs_recheck(double previous, double factor);

// The factor at `at_unix`: linear between two points, clamped to them; `before`'s when they
// are at the same time.
double interpolated_factor(const DriftPoint& before, const DriftPoint& after, double at_unix);

}  // namespace trainopt
