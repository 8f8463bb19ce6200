#include "scoring/stats.h"

#include <algorithm>
#include <cmath>

#include "contract/rng.h"

namespace trainopt {

double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const double rank = p / 100.0 * (values.size() - 1);
    const size_t lo = (size_t)std::floor(rank), hi = (size_t)std::ceil(rank);
    return values[lo] + (values[hi] - values[lo]) * (rank - lo);
}

double median(std::vector<double> values) {
    return percentile(std::move(values), 50);
}

double task_speedup(const TaskTimes& t) {
    if (!t.valid || t.baseline.empty() || t.submission.empty()) return 0;
    const double sub = median(t.submission);
    return sub > 0 ? median(t.baseline) / sub : 0;
}

double arithmetic_mean(const std::vector<double>& values) {
    if (values.empty()) return 0;
    double s = 0;
    for (double v : values) s += v;
    return s / values.size();
}

double geometric_mean(const std::vector<double>& values) {
    if (values.empty()) return 0;
    double log_sum = 0;
    for (double v : values) {
        if (v <= 0) return 0;
        log_sum += std::log(v);
    }
    return std::exp(log_sum / values.size());
}

namespace {

std::vector<double> resample(const std::vector<double>& values, Rng& rng) {
    std::vector<double> out(values.size());
    for (double& v : out) v = values[rng.next_below(values.size())];
    return out;
}

double resampled_speedup(const TaskTimes& t, Rng& rng) {
    if (!t.valid || t.baseline.empty() || t.submission.empty()) return 0;
    TaskTimes r{resample(t.baseline, rng), resample(t.submission, rng), true};
    return task_speedup(r);
}

}  // namespace

std::vector<double> bootstrap_task_speedup(const TaskTimes& task, int resamples, uint64_t seed) {
    Rng rng(seed);
    std::vector<double> out(resamples);
    for (double& v : out) v = resampled_speedup(task, rng);
    return out;
}

std::vector<double> bootstrap_geometric(const std::vector<TaskTimes>& tasks, int resamples,
                                        uint64_t seed) {
    Rng rng(seed);
    std::vector<double> out(resamples);
    std::vector<double> speedups(tasks.size());
    for (double& v : out) {
        for (size_t i = 0; i < tasks.size(); i++) speedups[i] = resampled_speedup(tasks[i], rng);
        v = geometric_mean(speedups);
    }
    return out;
}

SuiteSummary summarize_suite(const std::vector<TaskTimes>& tasks, int resamples, uint64_t seed) {
    SuiteSummary s;
    std::vector<double> speedups;
    for (const TaskTimes& t : tasks) speedups.push_back(task_speedup(t));
    s.arithmetic = arithmetic_mean(speedups);
    s.geometric = geometric_mean(speedups);

    Rng rng(seed);
    std::vector<double> arith(resamples), geo(resamples);
    std::vector<double> sample(tasks.size());
    for (int r = 0; r < resamples; r++) {
        for (size_t i = 0; i < tasks.size(); i++) sample[i] = resampled_speedup(tasks[i], rng);
        arith[r] = arithmetic_mean(sample);
        geo[r] = geometric_mean(sample);
    }
    s.arithmetic_ci = {percentile(arith, 2.5), percentile(arith, 97.5)};
    s.geometric_ci = {percentile(geo, 2.5), percentile(geo, 97.5)};
    return s;
}

namespace {

double ratio_or_zero(double numerator, double denominator) {
    return denominator > 0 ? numerator / denominator : 0;
}

}  // namespace

TwoSuiteSummary summarize_two_suites(const std::vector<TaskTimes>& first,
                                     const std::vector<TaskTimes>& second, int resamples,
                                     uint64_t seed) {
    TwoSuiteSummary s;
    s.first = summarize_suite(first, resamples, seed);
    s.second = summarize_suite(second, resamples, seed + 1);
    s.headline.arithmetic = (s.first.arithmetic + s.second.arithmetic) / 2;
    s.headline.geometric = std::sqrt(s.first.geometric * s.second.geometric);
    s.generalization = ratio_or_zero(s.second.arithmetic, s.first.arithmetic);

    Rng rng(seed + 2);
    std::vector<double> arith(resamples), geo(resamples), ratio(resamples);
    std::vector<double> a(first.size()), b(second.size());
    for (int r = 0; r < resamples; r++) {
        for (size_t i = 0; i < first.size(); i++) a[i] = resampled_speedup(first[i], rng);
        for (size_t i = 0; i < second.size(); i++) b[i] = resampled_speedup(second[i], rng);
        arith[r] = (arithmetic_mean(a) + arithmetic_mean(b)) / 2;
        geo[r] = std::sqrt(geometric_mean(a) * geometric_mean(b));
        ratio[r] = ratio_or_zero(arithmetic_mean(b), arithmetic_mean(a));
    }
    s.headline.arithmetic_ci = {percentile(arith, 2.5), percentile(arith, 97.5)};
    s.headline.geometric_ci = {percentile(geo, 2.5), percentile(geo, 97.5)};
    s.generalization_ci = {percentile(ratio, 2.5), percentile(ratio, 97.5)};
    return s;
}

}  // namespace trainopt
