// Change points in a series of nightly speedups: E-divisive means (Matteson & James 2014, "A
// nonparametric approach for multiple change point analysis of multivariate data", JASA; the
// method of MongoDB's performance CI), with a permutation test and a minimum relative magnitude.
// docs/ci.md, "Change points", states the parameters and why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace trainopt {

struct ChangePointOptions {
    double significance = 0.01;         // permutation-test p-value at most this
    int permutations = 999;             // p-values resolve to 1 / (permutations + 1)
    double min_relative_change = 0.05;  // |after / before - 1| of the adjacent segments' means
    int min_segment = 3;                // points on either side of a change point, at least 2
    uint64_t seed = 20140101;           // the permutations' generator: same series, same answer
};

struct ChangePoint {
    size_t index = 0;            // the first point after the change
    double p_value = 1;          // of the permutation test that accepted it
    double before = 0;           // geometric mean of the segment before (up to the previous change)
    double after = 0;            // and of the segment after (up to the next change)
    double relative_change = 0;  // after / before - 1
};

// The change points of a series of positive values (speedups), in order of index. The test runs
// on log(value), so a change is a ratio. Non-positive or non-finite values are not allowed (the
// caller leaves out invalid runs); fewer than 2 * min_segment points give none.
std::vector<ChangePoint> e_divisive_change_points(const std::vector<double>& values,
                                                  const ChangePointOptions& options = {});

}  // namespace trainopt
