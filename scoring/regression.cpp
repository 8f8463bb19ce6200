#include "scoring/regression.h"

#include <cstdio>

namespace trainopt {

namespace {

std::vector<double> ratios(const std::vector<double>& now, const std::vector<double>& before) {
    std::vector<double> out(now.size());
    for (size_t i = 0; i < now.size(); i++) out[i] = before[i] > 0 ? now[i] / before[i] : 0;
    return out;
}

std::string pct(double v) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%+.1f%%", v * 100);
    return buf;
}

}  // namespace

RegressionResult compare_reports(const ScoreReport& previous, const ScoreReport& current,
                                 double max_slowdown, int resamples) {
    RegressionResult result;
    const double threshold = 1.0 / (1.0 + max_slowdown);
    result.threshold = threshold;
    std::vector<TaskTimes> before, now;
    std::vector<std::string> names;
    for (const TaskReport& t : current.tasks) {
        for (const TaskReport& p : previous.tasks) {
            if (p.name == t.name) {
                before.push_back(times_of(p));
                now.push_back(times_of(t));
                names.push_back(t.name);
            }
        }
    }
    if (names.empty()) {
        result.regression = true;
        result.lines.push_back("no task is common to both reports: nothing can be compared");
        return result;
    }
    std::vector<double> geo =
        ratios(bootstrap_geometric(now, resamples, kRegressionSuiteSeedCurrent),
               bootstrap_geometric(before, resamples, kRegressionSuiteSeedPrevious));
    result.ratio_ci = {percentile(geo, 2.5), percentile(geo, 97.5)};
    std::vector<double> point_now, point_before;
    for (size_t i = 0; i < names.size(); i++) {
        point_now.push_back(task_speedup(now[i]));
        point_before.push_back(task_speedup(before[i]));
    }
    const double geo_before = geometric_mean(point_before);
    result.ratio = geo_before > 0 ? geometric_mean(point_now) / geo_before : 0;
    const double geo_upper = percentile(geo, 95.0);
    result.upper_bound = geo_upper;
    result.lines.push_back("suite geometric-mean speedup changed by " + pct(result.ratio - 1) +
                           " (95% CI " + pct(result.ratio_ci.low - 1) + " to " +
                           pct(result.ratio_ci.high - 1) + "), allowed slowdown " +
                           pct(-max_slowdown / (1 + max_slowdown)));
    if (geo_upper < threshold) {
        result.regression = true;
        result.lines.push_back("REGRESSION: the suite is significantly slower than allowed");
    }
    const double per_task_level = 100.0 * (1.0 - 0.05 / names.size());
    for (size_t i = 0; i < names.size(); i++) {
        TaskRegression& task = result.tasks.emplace_back();
        task.name = names[i];
        task.previous_speedup = point_before[i];
        task.current_speedup = point_now[i];
        if (!now[i].valid) {
            result.regression = task.regression = task.now_invalid = true;
            result.lines.push_back("REGRESSION: task " + names[i] + " is now INVALID");
            continue;
        }
        std::vector<double> r =
            ratios(bootstrap_task_speedup(now[i], resamples, kRegressionTaskSeedCurrent + i),
                   bootstrap_task_speedup(before[i], resamples, kRegressionTaskSeedPrevious + i));
        const double point = point_before[i] > 0 ? point_now[i] / point_before[i] : 0;
        const double upper = percentile(r, per_task_level);
        task.ratio = point;
        task.ratio_ci = {percentile(r, 2.5), percentile(r, 97.5)};
        task.upper_bound = upper;
        task.regression = upper < threshold;
        std::string line = "task " + names[i] + ": speedup " + pct(point - 1);
        if (upper < threshold) {
            result.regression = true;
            line = "REGRESSION: " + line + " (significant after Bonferroni correction)";
        }
        result.lines.push_back(line);
    }
    return result;
}

}  // namespace trainopt
