// Statistics for speedups: medians, bootstrap confidence intervals, and the regression test.
#pragma once

#include <cstdint>
#include <vector>

namespace trainopt {

double median(std::vector<double> values);
double percentile(std::vector<double> values, double p);  // p in [0, 100], linear interpolation

struct Interval {
    double low = 0;
    double high = 0;
};

// Times of one task: baseline and submission wall seconds per repetition. An invalid task has
// speedup 0 whatever its times.
struct TaskTimes {
    std::vector<double> baseline;
    std::vector<double> submission;
    bool valid = true;
};

double task_speedup(const TaskTimes& t);  // median(baseline) / median(submission), 0 if invalid

double arithmetic_mean(const std::vector<double>& values);
double geometric_mean(const std::vector<double>& values);  // 0 when any value is 0

struct SuiteSummary {
    double arithmetic = 0;
    double geometric = 0;
    Interval arithmetic_ci;  // bootstrap 95%
    Interval geometric_ci;
};

// Resamples each task's baseline and submission times (with replacement, independently) and
// recomputes the suite means; the 2.5th and 97.5th percentiles form the interval.
SuiteSummary summarize_suite(const std::vector<TaskTimes>& tasks, int resamples = 2000,
                             uint64_t seed = 12345);

// Bootstrap distribution of the suite's geometric-mean speedup, for comparing two runs.
std::vector<double> bootstrap_geometric(const std::vector<TaskTimes>& tasks, int resamples,
                                        uint64_t seed);
std::vector<double> bootstrap_task_speedup(const TaskTimes& task, int resamples, uint64_t seed);

}  // namespace trainopt
