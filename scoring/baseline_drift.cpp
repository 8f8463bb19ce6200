#include "scoring/baseline_drift.h"

#include <algorithm>
#include <cmath>

#include "scoring/stats.h"

namespace trainopt {

namespace {

double middle_of(const std::vector<BaselineTiming>& runs) {
    double sum = 0;
    for (const BaselineTiming& b : runs) sum += b.at_unix;
    return runs.empty() ? 0 : sum / (double)runs.size();
}

}  // namespace

DriftPoint first_drift_point(const Calibration& first) {
    std::vector<BaselineTiming> all;
    for (const std::vector<BaselineTiming>& task : first)
        all.insert(all.end(), task.begin(), task.end());
    return {middle_of(all), 1.0};
}

DriftPoint drift_point(const Calibration& first, const std::vector<BaselineTiming>& runs) {
    std::vector<double> ratios;
    for (size_t t = 0; t < std::min(first.size(), runs.size()); t++) {
        if (first[t].empty()) continue;
        std::vector<double> then;
        for (const BaselineTiming& b : first[t]) then.push_back(b.seconds);
        const double before = median(then);
        if (before > 0 && runs[t].seconds > 0) ratios.push_back(runs[t].seconds / before);
    }
    return {middle_of(runs), ratios.empty() ? std::nan("") : median(ratios)};
}

bool drift_needs_recheck(double previous, double factor) {
    return !std::isfinite(factor) || !(std::abs(factor / previous - 1) <= kDriftRecheck);
}

double interpolated_factor(const DriftPoint& before, const DriftPoint& after, double at_unix) {
    const double span = after.at_unix - before.at_unix;
    if (!(span > 0)) return before.factor;
    const double f = std::clamp((at_unix - before.at_unix) / span, 0.0, 1.0);
    return before.factor + f * (after.factor - before.factor);
}

}  // namespace trainopt
