// CI regression check: is the current run's speedup significantly below the previous run's by
// more than the allowed slowdown? Uses speedups (ratios measured within one run), never raw
// times, because CI machines differ from run to run.
#pragma once

#include <string>
#include <vector>

#include "scoring/report.h"

namespace trainopt {

// One task present in both reports: current / previous speedup.
struct TaskRegression {
    std::string name;
    double previous_speedup = 0;
    double current_speedup = 0;
    double ratio = 0;          // current / previous speedup (0 when the task is now INVALID)
    Interval ratio_ci;         // bootstrap 95% (two-sided, for display)
    double upper_bound = 0;    // one-sided upper bound at 1 - 0.05/n (Bonferroni over n tasks)
    bool now_invalid = false;  // a regression whatever the times
    bool regression = false;
};

struct RegressionResult {
    bool regression = false;
    double ratio = 0;                   // current / previous geometric-mean speedup
    Interval ratio_ci;                  // bootstrap 95% (two-sided, for display)
    double upper_bound = 0;             // one-sided 95% upper bound of ratio
    double threshold = 0;               // 1 / (1 + max_slowdown): a regression below it
    std::vector<TaskRegression> tasks;  // in the current report's order
    std::vector<std::string> lines;     // human-readable findings, one per line
};

// A regression is declared when the one-sided 95% upper bound of current/previous speedup is
// below 1 / (1 + max_slowdown), for the suite's geometric mean or (Bonferroni-corrected) for
// any single task present in both reports.
RegressionResult compare_reports(const ScoreReport& previous, const ScoreReport& current,
                                 double max_slowdown, int resamples = kRegressionResamples);

}  // namespace trainopt
