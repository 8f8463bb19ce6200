// Change points in synthetic series of speedups (scoring/change_points.h): the documented
// parameters find a 10% step in noisy nightly runs and stay quiet on noise alone.
#include "scoring/change_points.h"

#include <gtest/gtest.h>

#include <random>

namespace trainopt {
namespace {

// n speedups around `level` with relative Gaussian noise `noise` (sd), from a fixed seed.
std::vector<double> noisy(int n, double level, double noise, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> z(0, 1);
    std::vector<double> out;
    for (int i = 0; i < n; i++) out.push_back(level * (1 + noise * z(rng)));
    return out;
}

std::vector<double> concat(std::vector<double> a, const std::vector<double>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

TEST(ChangePoints, FindsATenPercentStepAfterTwentyNoisyRuns) {
    // 3% run-to-run noise, then the speedup rises by 10% and stays there for 30 runs
    const std::vector<double> series = concat(noisy(20, 10.0, 0.03, 1), noisy(30, 11.0, 0.03, 2));
    const std::vector<ChangePoint> found = e_divisive_change_points(series);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_NEAR((double)found[0].index, 20, 1);
    EXPECT_NEAR(found[0].relative_change, 0.10, 0.03);
    EXPECT_LE(found[0].p_value, ChangePointOptions{}.significance);
    EXPECT_NEAR(found[0].before, 10, 0.3);
    EXPECT_NEAR(found[0].after, 11, 0.3);
}

TEST(ChangePoints, FindsASlowdownAsANegativeChange) {
    const std::vector<double> series = concat(noisy(20, 10.0, 0.03, 3), noisy(30, 9.0, 0.03, 4));
    const std::vector<ChangePoint> found = e_divisive_change_points(series);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_NEAR((double)found[0].index, 20, 1);
    EXPECT_NEAR(found[0].relative_change, -0.10, 0.03);
}

TEST(ChangePoints, PureNoiseHasNone) {
    for (uint64_t seed = 10; seed < 20; seed++) {
        EXPECT_TRUE(e_divisive_change_points(noisy(50, 10.0, 0.03, seed)).empty())
            << "seed " << seed;
    }
}

TEST(ChangePoints, FindsTwoSteps) {
    const std::vector<double> series =
        concat(concat(noisy(15, 10.0, 0.02, 5), noisy(15, 12.0, 0.02, 6)), noisy(15, 9.0, 0.02, 7));
    const std::vector<ChangePoint> found = e_divisive_change_points(series);
    ASSERT_EQ(found.size(), 2u);
    EXPECT_NEAR((double)found[0].index, 15, 1);
    EXPECT_GT(found[0].relative_change, 0.1);
    EXPECT_NEAR((double)found[1].index, 30, 1);
    EXPECT_LT(found[1].relative_change, -0.15);
}

TEST(ChangePoints, ASignificantButSmallChangeIsNotFlagged) {
    // 2% up on 0.2% noise: real, but below the 5% minimum that is worth anybody's attention
    const std::vector<double> series = concat(noisy(20, 10.0, 0.002, 8), noisy(20, 10.2, 0.002, 9));
    EXPECT_TRUE(e_divisive_change_points(series).empty());
    ChangePointOptions sensitive;
    sensitive.min_relative_change = 0.01;
    EXPECT_EQ(e_divisive_change_points(series, sensitive).size(), 1u);
}

TEST(ChangePoints, ShortOrFlatSeriesHaveNone) {
    EXPECT_TRUE(e_divisive_change_points({}).empty());
    EXPECT_TRUE(e_divisive_change_points({10, 10, 20, 20, 20}).empty());  // < 2 * min_segment
    EXPECT_TRUE(e_divisive_change_points(std::vector<double>(30, 7.0)).empty());
}

TEST(ChangePoints, TheSameSeriesGivesTheSameAnswer) {
    const std::vector<double> series = concat(noisy(20, 10.0, 0.03, 1), noisy(30, 11.0, 0.03, 2));
    const std::vector<ChangePoint> a = e_divisive_change_points(series);
    const std::vector<ChangePoint> b = e_divisive_change_points(series);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++) {
        EXPECT_EQ(a[i].index, b[i].index);
        EXPECT_EQ(a[i].p_value, b[i].p_value);
    }
}

}  // namespace
}  // namespace trainopt
