// The baseline time a batch's submission run is compared with (docs/batch.md, "Drift"): the
// baseline of the same task and seed is timed at calibrations through the batch, and a
// submission run between two calibrations gets the baseline time interpolated linearly, by the
// harness's clock, between that seed's runs in the calibrations before and after it.
#pragma once

#include <string>
#include <vector>

namespace trainopt {

// One calibration: per task (the suite's order) and repetition (seed), when the baseline ran
// and its wall time.
struct BaselineTiming {
    double at_unix = 0;
    double seconds = 0;
};
using Calibration = std::vector<std::vector<BaselineTiming>>;  // [task][rep]

// The baseline time at `at_unix` between `before` and `after` (each one timed run of the same
// task and seed): linear in time, clamped to the two. Equal times give `before`'s seconds.
double interpolated_baseline_seconds(const BaselineTiming& before, const BaselineTiming& after,
                                     double at_unix);

// How far the baseline moved between two calibrations: median over every (task, rep) of
// after / before - 1 (0.03: 3% slower). NaN when they share no timing.
double calibration_drift(const Calibration& before, const Calibration& after);

}  // namespace trainopt
