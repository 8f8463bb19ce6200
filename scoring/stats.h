// Statistics for speedups: medians, bootstrap confidence intervals, and the regression test.
#pragma once

#include <cstdint>
#include <vector>

namespace trainopt {

double median(std::vector<double> values);
double percentile(std::vector<double> values, double p);  // p in [0, 100], linear interpolation

// The bootstrap's resample counts and seeds, fixed so that the same per-repetition times always
// give the same intervals: a report loaded back shows the intervals it was written with, and
// `trainopt ci` compares two saved reports reproducibly.
constexpr int kBootstrapResamples = 2000;        // a report's task and suite intervals
constexpr uint64_t kSuiteBootstrapSeed = 12345;  // the suite's means
constexpr uint64_t kTaskBootstrapSeed = 777;     // plus the task's index in the report
constexpr int kRegressionResamples = 4000;       // the comparison of two reports (regression.h)
constexpr uint64_t kRegressionSuiteSeedCurrent = 101;
constexpr uint64_t kRegressionSuiteSeedPrevious = 202;
constexpr uint64_t kRegressionTaskSeedCurrent = 303;  // plus the task's index among those compared
constexpr uint64_t kRegressionTaskSeedPrevious = 404;

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
SuiteSummary summarize_suite(const std::vector<TaskTimes>& tasks,
                             int resamples = kBootstrapResamples,
                             uint64_t seed = kSuiteBootstrapSeed);

// A score over two suites scored together (the agents' suite, then one generated at scoring
// time): each suite's summary, the headline over both with each suite weighing half (the mean
// of the two suites' means), and the generalization ratio, the second suite's arithmetic mean
// over the first's. Every interval comes from one bootstrap that resamples each task's times.
struct TwoSuiteSummary {
    SuiteSummary first;
    SuiteSummary second;
    SuiteSummary headline;
    double generalization = 0;  // second.arithmetic / first.arithmetic; 0 when the first is 0
    Interval generalization_ci;
};
TwoSuiteSummary summarize_two_suites(const std::vector<TaskTimes>& first,
                                     const std::vector<TaskTimes>& second,
                                     int resamples = kBootstrapResamples,
                                     uint64_t seed = kSuiteBootstrapSeed);

// Bootstrap distribution of the suite's geometric-mean speedup, for comparing two runs.
std::vector<double> bootstrap_geometric(const std::vector<TaskTimes>& tasks, int resamples,
                                        uint64_t seed);
std::vector<double> bootstrap_task_speedup(const TaskTimes& task, int resamples, uint64_t seed);

}  // namespace trainopt
