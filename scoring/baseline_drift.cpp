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
    return {middle_of(all), 1.0};
}

DriftPoint drift_point(const Calibration& first, const Retiming& retiming) {
    std::vector<double> ratios;
    for (size_t t = 0; t < std::min(first.size(), retiming.runs.size()); t++) {
        if (retiming.rep >= first[t].size()) continue;
        const double then = first[t][retiming.rep].seconds, now = retiming.runs[t].seconds;
        if (then > 0 && now > 0) ratios.push_back(now / then);
    }
    return {middle_of(retiming.runs), ratios.empty() ? std::nan("") : median(ratios)};
}

double interpolated_factor(const DriftPoint& before, const DriftPoint& after, double at_unix) {
    const double span = after.at_unix - before.at_unix;
    if (!(span > 0)) return before.factor;
    const double f = std::clamp((at_unix - before.at_unix) / span, 0.0, 1.0);
    return before.factor + f * (after.factor - before.factor);
}

}  // namespace trainopt
