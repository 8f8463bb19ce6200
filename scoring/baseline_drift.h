// The baseline time a batch's submission run is compared with (docs/batch.md, "Re-timing").
// The first calibration times the baseline once per task and seed. A re-timing later runs it
// once per task, on one seed (each re-timing the next seed in turn), and measures each task's
// drift: how much slower or faster that run is than the median of the task's first runs. A
// submission's repetition is compared with the first calibration's time of its task and seed,
// scaled by the task's drift interpolated linearly, by the harness's clock, between the
// re-timings before and after it.
#pragma once

#include <cstddef>
#include <vector>

namespace trainopt {

// One timed run of the baseline: when it ran (the middle of the run) and its wall time.
struct BaselineTiming {
    double at_unix = 0;
    double seconds = 0;
};
using Calibration = std::vector<std::vector<BaselineTiming>>;  // [task][rep]: the first one

// A re-timing: one run per task (the suite's order), each with repetition `rep`'s seed.
struct Retiming {
    size_t rep = 0;
    std::vector<BaselineTiming> runs;  // [task]
};

// How fast the baseline was at one moment relative to the first calibration, per task (1.03:
// 3% slower).
struct DriftPoint {
    double at_unix = 0;
    std::vector<double> factors;  // [task]
};

// The first calibration's own point: every factor 1, at the middle of its runs.
DriftPoint first_drift_point(const Calibration& first);

// The re-timing's point, at the middle of its runs: runs[t].seconds over the median of
// first[t]. A task without a positive time on both sides gets NaN.
DriftPoint drift_point(const Calibration& first, const Retiming& retiming);

// Task t's factor at `at_unix`: linear between two points, clamped to them; `before`'s when
// they are at the same time.
double interpolated_factor(const DriftPoint& before, const DriftPoint& after, size_t t,
                           double at_unix);

// The median over tasks of a point's factors, for logs and reports (NaN when none is finite).
double median_factor(const DriftPoint& point);

}  // namespace trainopt
