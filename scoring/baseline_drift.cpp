#include "scoring/baseline_drift.h"

#include <algorithm>
#include <cmath>

#include "scoring/stats.h"

namespace trainopt {

double interpolated_baseline_seconds(const BaselineTiming& before, const BaselineTiming& after,
                                     double at_unix) {
    const double span = after.at_unix - before.at_unix;
    if (!(span > 0)) return before.seconds;
    const double f = std::clamp((at_unix - before.at_unix) / span, 0.0, 1.0);
    return before.seconds + f * (after.seconds - before.seconds);
}

double calibration_drift(const Calibration& before, const Calibration& after) {
    std::vector<double> ratios;
    for (size_t t = 0; t < std::min(before.size(), after.size()); t++) {
        for (size_t r = 0; r < std::min(before[t].size(), after[t].size()); r++) {
            if (before[t][r].seconds > 0 && after[t][r].seconds > 0)
                ratios.push_back(after[t][r].seconds / before[t][r].seconds - 1);
        }
    }
    return ratios.empty() ? std::nan("") : median(ratios);
}

}  // namespace trainopt
