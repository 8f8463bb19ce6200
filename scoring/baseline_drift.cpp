#include "scoring/baseline_drift.h"

#include <algorithm>
#include <cmath>

#include "scoring/stats.h"

namespace trainopt {

namespace {

// The mean of the runs' mid-run times.
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
    return {middle_of(all), std::vector<double>(first.size(), 1.0)};
}

DriftPoint drift_point(const Calibration& first, const Retiming& retiming) {
    DriftPoint point{middle_of(retiming.runs), {}};
    for (size_t t = 0; t < first.size(); t++) {
        std::vector<double> then;
        for (const BaselineTiming& b : first[t]) then.push_back(b.seconds);
        const double before = then.empty() ? 0 : median(then);
        const double now = t < retiming.runs.size() ? retiming.runs[t].seconds : 0;
        point.factors.push_back(before > 0 && now > 0 ? now / before : std::nan(""));
    }
    return point;
}

double interpolated_factor(const DriftPoint& before, const DriftPoint& after, size_t t,
                           double at_unix) {
    const double span = after.at_unix - before.at_unix;
    if (!(span > 0)) return before.factors[t];
    const double f = std::clamp((at_unix - before.at_unix) / span, 0.0, 1.0);
    return before.factors[t] + f * (after.factors[t] - before.factors[t]);
}

double median_factor(const DriftPoint& point) {
    std::vector<double> finite;
    for (double f : point.factors)
        if (std::isfinite(f)) finite.push_back(f);
    return finite.empty() ? std::nan("") : median(finite);
}

}  // namespace trainopt
