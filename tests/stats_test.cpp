#include "scoring/stats.h"

#include <gtest/gtest.h>

#include <cmath>

#include "scoring/regression.h"

namespace trainopt {
namespace {

TEST(Stats, MedianAndPercentile) {
    EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
    EXPECT_DOUBLE_EQ(median({4, 1, 2, 3}), 2.5);
    EXPECT_DOUBLE_EQ(percentile({0, 10}, 25), 2.5);
    EXPECT_DOUBLE_EQ(median({}), 0);
}

TEST(Stats, SpeedupIsARatioOfMediansAndZeroWhenInvalid) {
    TaskTimes t{{10, 12, 11}, {2, 2.2, 1.8}, true};
    EXPECT_DOUBLE_EQ(task_speedup(t), 11.0 / 2.0);
    t.valid = false;
    EXPECT_DOUBLE_EQ(task_speedup(t), 0);
}

TEST(Stats, MeansTreatInvalidTasksAsZero) {
    EXPECT_DOUBLE_EQ(arithmetic_mean({2, 8}), 5);
    EXPECT_DOUBLE_EQ(geometric_mean({2, 8}), 4);
    EXPECT_DOUBLE_EQ(geometric_mean({2, 0}), 0);
}

TEST(Stats, BootstrapIntervalBracketsThePointEstimate) {
    std::vector<TaskTimes> tasks = {{{10, 11, 12, 10.5, 11.5}, {1, 1.1, 0.9, 1.05, 0.95}, true},
                                    {{20, 21, 19, 20.5, 19.5}, {5, 5.5, 4.5, 5.2, 4.8}, true}};
    SuiteSummary s = summarize_suite(tasks);
    EXPECT_LE(s.arithmetic_ci.low, s.arithmetic);
    EXPECT_GE(s.arithmetic_ci.high, s.arithmetic);
    EXPECT_LE(s.geometric_ci.low, s.geometric);
    EXPECT_GE(s.geometric_ci.high, s.geometric);
    EXPECT_LT(s.arithmetic_ci.high - s.arithmetic_ci.low, 3.0);
    // identical repetitions leave no uncertainty
    SuiteSummary exact = summarize_suite({{{10, 10, 10}, {2, 2, 2}, true}});
    EXPECT_DOUBLE_EQ(exact.arithmetic_ci.low, 5);
    EXPECT_DOUBLE_EQ(exact.arithmetic_ci.high, 5);
}

TEST(Stats, TwoSuitesWeighHalfEachAndGiveTheGeneralizationRatio) {
    // first suite: speedups 10 and 20 (mean 15); second: four tasks of 3 (mean 3)
    const std::vector<TaskTimes> first = {{{10, 10}, {1, 1}, true}, {{20, 20}, {1, 1}, true}};
    const std::vector<TaskTimes> second(4, TaskTimes{{6, 6}, {2, 2}, true});
    const TwoSuiteSummary s = summarize_two_suites(first, second);
    EXPECT_DOUBLE_EQ(s.first.arithmetic, 15);
    EXPECT_DOUBLE_EQ(s.second.arithmetic, 3);
    EXPECT_DOUBLE_EQ(s.headline.arithmetic, 9);  // not 7, the mean over all six tasks
    EXPECT_NEAR(s.headline.geometric, std::sqrt(std::sqrt(200.0) * 3), 1e-9);
    EXPECT_DOUBLE_EQ(s.generalization, 0.2);
    EXPECT_DOUBLE_EQ(s.generalization_ci.low, 0.2);  // identical repetitions
    EXPECT_DOUBLE_EQ(s.generalization_ci.high, 0.2);
    // noisy times give an interval around the point estimate
    const std::vector<TaskTimes> noisy = {{{6, 6.5, 5.5}, {2, 2.2, 1.8}, true}};
    const TwoSuiteSummary n = summarize_two_suites(first, noisy);
    EXPECT_LE(n.generalization_ci.low, n.generalization);
    EXPECT_GE(n.generalization_ci.high, n.generalization);
    EXPECT_LT(n.generalization_ci.low, n.generalization_ci.high);
    // an invalid generated task counts as 0 there
    const TwoSuiteSummary bad = summarize_two_suites(first, {{{6}, {2}, false}});
    EXPECT_DOUBLE_EQ(bad.generalization, 0);
    EXPECT_DOUBLE_EQ(bad.headline.arithmetic, 7.5);
}

ScoreReport report_with(double submission_scale) {
    ScoreReport r;
    r.complete = true;
    for (const char* name : {"a", "b"}) {
        TaskReport t;
        t.name = name;
        t.baseline_seconds = {10, 10.3, 9.8, 10.1, 9.9};
        t.submission_seconds = {1 * submission_scale, 1.02 * submission_scale,
                                0.98 * submission_scale, 1.01 * submission_scale,
                                0.99 * submission_scale};
        r.tasks.push_back(t);
    }
    finalize_report(r);
    return r;
}

TEST(Regression, IdenticalRunsDoNotRegress) {
    RegressionResult r = compare_reports(report_with(1.0), report_with(1.0), 0.05);
    EXPECT_FALSE(r.regression);
    EXPECT_NEAR(r.ratio, 1.0, 1e-9);
}

TEST(Regression, ASlowdownWithinTheAllowanceDoesNotRegress) {
    EXPECT_FALSE(compare_reports(report_with(1.0), report_with(1.03), 0.10).regression);
}

TEST(Regression, ALargeSlowdownRegresses) {
    RegressionResult r = compare_reports(report_with(1.0), report_with(2.0), 0.10);
    EXPECT_TRUE(r.regression);
    EXPECT_NEAR(r.ratio, 0.5, 0.01);
}

TEST(Regression, AnInvalidTaskRegresses) {
    ScoreReport now = report_with(1.0);
    now.tasks[0].valid = false;
    finalize_report(now);
    EXPECT_TRUE(compare_reports(report_with(1.0), now, 0.10).regression);
}

}  // namespace
}  // namespace trainopt
