// The paired sequential test of `trainopt ci`: the t quantiles, the look schedule, and on
// simulated timing noise its false-alarm rate and power (docs/ci.md).
#include "scoring/sequential.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace trainopt {
namespace {

TEST(Sequential, StudentTQuantilesMatchTheTables) {
    EXPECT_NEAR(student_t_quantile(0.975, 10), 2.2281, 1e-4);
    EXPECT_NEAR(student_t_quantile(0.99, 5), 3.3649, 1e-4);
    EXPECT_NEAR(student_t_quantile(0.995, 1), 63.657, 1e-3);
    EXPECT_NEAR(student_t_quantile(0.95, 1000), 1.6464, 1e-3);
    EXPECT_NEAR(student_t_quantile(0.025, 10), -2.2281, 1e-4);
    EXPECT_TRUE(std::isnan(student_t_quantile(1.0, 3)));
}

TEST(Sequential, LooksGrowGeometricallyToTheLastRound) {
    const std::vector<int> looks = look_schedule(SequentialOptions{});
    EXPECT_EQ(looks, (std::vector<int>{3, 4, 5, 7, 9, 12, 16, 22, 30, 41, 48}));
    EXPECT_EQ(planned_looks(SequentialOptions{}), 12);
}

// One simulated `ci` run: rounds of `tasks` paired log-ratios with a true slowdown and
// Gaussian noise, looked at on the schedule until decided.
CiVerdict simulate(double slowdown, double noise, int tasks, std::mt19937_64& rng,
                   const SequentialOptions& options) {
    std::normal_distribution<double> normal(std::log1p(slowdown), noise);
    std::vector<std::vector<double>> rounds;
    for (int look : look_schedule(options)) {
        while ((int)rounds.size() < look) {
            std::vector<double> round(tasks);
            for (double& v : round) v = normal(rng);
            rounds.push_back(round);
        }
        const SequentialLook result = look_at_rounds(rounds, options);
        if (result.verdict != CiVerdict::undecided) return result.verdict;
    }
    return CiVerdict::undecided;
}

TEST(Sequential, FalseAlarmsStayUnderAlphaAndTenPercentIsFound) {
    std::mt19937_64 rng(7);
    SequentialOptions options;
    options.max_slowdown = 0.05;
    int false_alarms = 0, unchanged_passed = 0, found = 0, at_allowance = 0;
    const int runs = 400;
    for (int i = 0; i < runs; i++) {
        // per-pair noise of 10% on five tasks, like short runs on a busy 2-core VM
        const CiVerdict same = simulate(0.0, 0.10, 5, rng, options);
        false_alarms += same == CiVerdict::regression;
        unchanged_passed += same == CiVerdict::no_regression;
        found += simulate(0.10, 0.10, 5, rng, options) == CiVerdict::regression;
        at_allowance += simulate(0.05, 0.10, 5, rng, options) == CiVerdict::regression;
    }
    EXPECT_LE(false_alarms, runs / 100);
    EXPECT_GE(unchanged_passed, runs * 95 / 100);
    EXPECT_GE(found, runs * 95 / 100);
    EXPECT_LE(at_allowance, runs * 10 / 100);  // at the allowance itself: mostly undecided
}

TEST(Sequential, OneTaskFarSlowerIsARegressionOnItsOwn) {
    std::mt19937_64 rng(3);
    std::normal_distribution<double> noise(0, 0.02);
    std::vector<std::vector<double>> rounds;
    for (int r = 0; r < 12; r++) {
        std::vector<double> round(5);
        for (double& v : round) v = noise(rng);
        round[2] += std::log(1.3);  // one task of five 30% slower: the suite's mean only ~5%
        rounds.push_back(round);
    }
    const SequentialLook look = look_at_rounds(rounds, SequentialOptions{});
    EXPECT_EQ(look.verdict, CiVerdict::regression);
    ASSERT_EQ(look.regressed_tasks.size(), 1u);
    EXPECT_EQ(look.regressed_tasks[0], 2u);
}

TEST(Sequential, TooFewRoundsDecideNothing) {
    const SequentialLook look = look_at_rounds({{0.5, 0.5}}, SequentialOptions{});
    EXPECT_EQ(look.verdict, CiVerdict::undecided);
    EXPECT_TRUE(std::isinf(look.suite.high));
    EXPECT_EQ(look_at_rounds({}, SequentialOptions{}).verdict, CiVerdict::undecided);
}

TEST(Sequential, RoundsNeededGrowWithTheNoise) {
    const int quiet = rounds_needed(0.01, SequentialOptions{});
    const int noisy = rounds_needed(0.05, SequentialOptions{});
    EXPECT_LT(quiet, noisy);
    EXPECT_LE(quiet, 6);
}

}  // namespace
}  // namespace trainopt
