// The baseline time a batch's submission run is compared with (docs/batch.md, "Re-timing").
// The first calibration times the baseline once per task and seed. A re-timing later runs it
// once per task, on one seed (each re-timing the next seed in turn), and measures how much
// slower or faster the baseline has become since the first calibration: the median over the
// tasks of each run's time over the same task and seed's first time. A submission's repetition
// is compared with the first calibration's time of its task and seed, scaled by that factor
// interpolated linearly, by the harness's clock, between the re-timings before and after it.
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

// A re-timing: one run per task (the suite's order), each of repetition `rep`'s seed.
struct Retiming {
    size_t rep = 0;
    std::vector<BaselineTiming> runs;  // [task]
};

// How fast the baseline was at one moment relative to the first calibration (1.03: 3% slower).
struct DriftPoint {
    double at_unix = 0;
    double factor = 1;
};

// The first calibration's own point: factor 1 at the middle of its runs.
DriftPoint first_drift_point(const Calibration& first);

// The re-timing's point: at the middle of its runs, the median over tasks of
// runs[t].seconds / first[t][rep].seconds. Tasks without both times (positive) are left out;
// with none left the factor is NaN.
DriftPoint drift_point(const Calibration& first, const Retiming& retiming);

// The factor at `at_unix`: linear between two points, clamped to them; `before`'s factor when
// they are at the same time.
double interpolated_factor(const DriftPoint& before, const DriftPoint& after, double at_unix);

}  // namespace trainopt
