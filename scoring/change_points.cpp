// E-divisive means with alpha = 1 (Matteson & James 2014): the divergence between the points
// before and after a candidate split is the energy distance
//     Q(tau) = m k / (m + k) * (2/(m k) sum|x_i - y_j| - 1/C(m,2) sum|x_i - x_i'|
//                                                     - 1/C(k,2) sum|y_j - y_j'|)
// between the m points left of tau and the k points right of it, up to the end of the segment
// (MongoDB's variant: the right part is never cut short). Splits are found one at a time: the
// best split of any current segment becomes a change point when a permutation test says no
// reordering of the points within the segments gives as good a split, at the significance asked.
#include "scoring/change_points.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace trainopt {

namespace {

struct Split {
    size_t tau = 0;  // index of the first point right of the split
    double q = -1;   // the divergence; -1 when the segment is too short to split
};

// The best split of x[begin, end) with at least min_segment points on either side, in O(n^2):
// the within-left and within-right distance sums are updated one point at a time, and the
// between sum is what remains of the total.
Split best_split(const std::vector<double>& x, size_t begin, size_t end, size_t min_segment) {
    Split best;
    const size_t n = end - begin;
    if (n < 2 * min_segment) return best;
    // left[t]: distances of point t to the points before it; right[t]: to the points after it
    std::vector<double> left(n, 0), right(n, 0);
    double total = 0;
    for (size_t t = 0; t < n; t++) {
        for (size_t u = t + 1; u < n; u++) {
            const double d = std::abs(x[begin + t] - x[begin + u]);
            right[t] += d;
            left[u] += d;
            total += d;
        }
    }
    double within_left = 0, within_right = total;
    for (size_t tau = 1; tau < n; tau++) {
        within_left += left[tau - 1];
        within_right -= right[tau - 1];
        if (tau < min_segment || n - tau < min_segment) continue;
        const double m = (double)tau, k = (double)(n - tau);
        const double between = total - within_left - within_right;
        const double q = m * k / (m + k) *
                         (2 * between / (m * k) - 2 * within_left / (m * (m - 1)) -
                          2 * within_right / (k * (k - 1)));
        if (q > best.q) best = {begin + tau, q};
    }
    return best;
}

// The best split over all segments between consecutive bounds (0, change points..., n).
Split best_split_of_segments(const std::vector<double>& x, const std::vector<size_t>& bounds,
                             size_t min_segment) {
    Split best;
    for (size_t s = 0; s + 1 < bounds.size(); s++) {
        const Split split = best_split(x, bounds[s], bounds[s + 1], min_segment);
        if (split.q > best.q) best = split;
    }
    return best;
}

// The permutation test of a split with divergence q: the share of reorderings (each segment's
// points shuffled within it, so earlier change points stay) whose best split is at least as
// good, counting the observed order as one. Stops early once the p-value is above the
// significance: further permutations could only confirm that.
double permutation_p_value(const std::vector<double>& x, const std::vector<size_t>& bounds,
                           double q, const ChangePointOptions& o, std::mt19937_64& rng) {
    std::vector<double> shuffled = x;
    int at_least_as_good = 0;
    const double give_up = o.significance * (o.permutations + 1);
    for (int p = 0; p < o.permutations; p++) {
        for (size_t s = 0; s + 1 < bounds.size(); s++)
            std::shuffle(shuffled.begin() + bounds[s], shuffled.begin() + bounds[s + 1], rng);
        if (best_split_of_segments(shuffled, bounds, o.min_segment).q >= q) at_least_as_good++;
        if (at_least_as_good + 1 > give_up) return (at_least_as_good + 1.0) / (p + 2.0);
    }
    return (at_least_as_good + 1.0) / (o.permutations + 1.0);
}

std::vector<size_t> bounds_of(const std::vector<size_t>& cuts, size_t n) {
    std::vector<size_t> bounds = {0};
    bounds.insert(bounds.end(), cuts.begin(), cuts.end());
    bounds.push_back(n);
    return bounds;
}

double mean_of(const std::vector<double>& x, size_t begin, size_t end) {
    double sum = 0;
    for (size_t i = begin; i < end; i++) sum += x[i];
    return sum / (double)(end - begin);
}

// The change points with their adjacent segments' geometric means, given the cuts.
std::vector<ChangePoint> describe(const std::vector<double>& logs, const std::vector<size_t>& cuts,
                                  const std::vector<double>& p_values) {
    const std::vector<size_t> bounds = bounds_of(cuts, logs.size());
    std::vector<ChangePoint> out;
    for (size_t c = 0; c < cuts.size(); c++) {
        ChangePoint cp;
        cp.index = cuts[c];
        cp.p_value = p_values[c];
        cp.before = std::exp(mean_of(logs, bounds[c], bounds[c + 1]));
        cp.after = std::exp(mean_of(logs, bounds[c + 1], bounds[c + 2]));
        cp.relative_change = cp.after / cp.before - 1;
        out.push_back(cp);
    }
    return out;
}

}  // namespace

std::vector<ChangePoint> e_divisive_change_points(const std::vector<double>& values,
                                                  const ChangePointOptions& options) {
    ChangePointOptions o = options;
    o.min_segment = std::max(o.min_segment, 2);  // a segment's within-distance needs two points
    std::vector<double> logs;
    for (double v : values) logs.push_back(std::log(v));
    std::mt19937_64 rng(o.seed);
    std::vector<size_t> cuts;      // sorted
    std::vector<double> p_values;  // in the order of cuts
    while (true) {
        const std::vector<size_t> bounds = bounds_of(cuts, logs.size());
        const Split best = best_split_of_segments(logs, bounds, o.min_segment);
        if (best.q < 0) break;
        const double p = permutation_p_value(logs, bounds, best.q, o, rng);
        if (p > o.significance) break;
        const auto at = std::lower_bound(cuts.begin(), cuts.end(), best.tau);
        p_values.insert(p_values.begin() + (at - cuts.begin()), p);
        cuts.insert(at, best.tau);
    }
    // Significant is not the same as large: drop the smallest change below the minimum
    // magnitude (merging its two segments) until every change left is large enough.
    while (true) {
        const std::vector<ChangePoint> points = describe(logs, cuts, p_values);
        size_t smallest = points.size();
        for (size_t c = 0; c < points.size(); c++) {
            const double size = std::abs(points[c].relative_change);
            if (size < o.min_relative_change &&
                (smallest == points.size() || size < std::abs(points[smallest].relative_change)))
                smallest = c;
        }
        if (smallest == points.size()) return points;
        cuts.erase(cuts.begin() + smallest);
        p_values.erase(p_values.begin() + smallest);
    }
}

}  // namespace trainopt
