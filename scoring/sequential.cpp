#include "scoring/sequential.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace trainopt {

std::vector<int> look_schedule(const SequentialOptions& options) {
    std::vector<int> rounds;
    for (int r = std::max(2, options.min_rounds); r < options.max_rounds;
         r = std::max(r + 1, (int)std::lround(r * 1.35)))
        rounds.push_back(r);
    rounds.push_back(std::max(2, options.max_rounds));
    return rounds;
}

int planned_looks(const SequentialOptions& options) {
    return (int)look_schedule(options).size() + 1;  // one more: a look forced by the budget
}

std::string to_string(CiVerdict verdict) {
    switch (verdict) {
        case CiVerdict::regression:
            return "REGRESSION";
        case CiVerdict::no_regression:
            return "NO REGRESSION";
        case CiVerdict::undecided:
            return "UNDECIDED";
    }
    return "UNDECIDED";
}

namespace {

// The continued fraction of the regularized incomplete beta function (modified Lentz).
double incomplete_beta_fraction(double a, double b, double x) {
    constexpr double kTiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (std::fabs(d) < kTiny) d = kTiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 300; m++) {
        const double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        d = 1 + aa * d;
        if (std::fabs(d) < kTiny) d = kTiny;
        c = 1 + aa / c;
        if (std::fabs(c) < kTiny) c = kTiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        d = 1 + aa * d;
        if (std::fabs(d) < kTiny) d = kTiny;
        c = 1 + aa / c;
        if (std::fabs(c) < kTiny) c = kTiny;
        d = 1 / d;
        const double step = d * c;
        h *= step;
        if (std::fabs(step - 1) < 1e-15) break;
    }
    return h;
}

// I_x(a, b), the regularized incomplete beta function.
double incomplete_beta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    const double log_front =
        std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
    if (x < (a + 1) / (a + b + 2))
        return std::exp(log_front) * incomplete_beta_fraction(a, b, x) / a;
    return 1 - std::exp(log_front) * incomplete_beta_fraction(b, a, 1 - x) / b;
}

double student_t_cdf(double t, double dof) {
    const double tail = 0.5 * incomplete_beta(dof / 2, 0.5, dof / (dof + t * t));
    return t >= 0 ? 1 - tail : tail;
}

double mean_of(const std::vector<double>& values) {
    double sum = 0;
    for (double v : values) sum += v;
    return values.empty() ? 0 : sum / values.size();
}

// The mean of `values` with one-sided bounds at `level` each (Student t, n - 1 dof).
PairedEstimate estimate(const std::vector<double>& values, double level) {
    PairedEstimate e;
    e.rounds = (int)values.size();
    e.mean = mean_of(values);
    if (values.size() < 2) {
        e.low = -std::numeric_limits<double>::infinity();
        e.high = std::numeric_limits<double>::infinity();
        return e;
    }
    double squares = 0;
    for (double v : values) squares += (v - e.mean) * (v - e.mean);
    e.spread = std::sqrt(squares / (values.size() - 1));
    const double half =
        student_t_quantile(1 - level, values.size() - 1.0) * e.spread / std::sqrt(values.size());
    e.low = e.mean - half;
    e.high = e.mean + half;
    return e;
}

}  // namespace

double student_t_quantile(double p, double dof) {
    if (!(p > 0 && p < 1) || !(dof > 0)) return std::numeric_limits<double>::quiet_NaN();
    if (p < 0.5) return -student_t_quantile(1 - p, dof);
    double low = 0, high = 1;
    while (student_t_cdf(high, dof) < p && high < 1e12) high *= 2;
    for (int i = 0; i < 200 && high - low > 1e-12 * high; i++) {
        const double mid = (low + high) / 2;
        (student_t_cdf(mid, dof) < p ? low : high) = mid;
    }
    return (low + high) / 2;
}

SequentialLook look_at_rounds(const std::vector<std::vector<double>>& log_ratios,
                              const SequentialOptions& options) {
    SequentialLook look;
    const size_t tasks = log_ratios.empty() ? 0 : log_ratios.front().size();
    look.suite_level = options.alpha / planned_looks(options);
    look.task_level = look.suite_level / std::max<size_t>(1, tasks);
    std::vector<double> suite;
    for (const std::vector<double>& round : log_ratios) suite.push_back(mean_of(round));
    look.suite = estimate(suite, look.suite_level);
    for (size_t t = 0; t < tasks; t++) {
        std::vector<double> values;
        for (const std::vector<double>& round : log_ratios) values.push_back(round[t]);
        look.tasks.push_back(estimate(values, look.task_level));
    }
    const double allowance = std::log1p(options.max_slowdown);
    for (size_t t = 0; t < look.tasks.size(); t++) {
        if (look.tasks[t].low > allowance) look.regressed_tasks.push_back(t);
    }
    if (look.suite.low > allowance || !look.regressed_tasks.empty()) {
        look.verdict = CiVerdict::regression;
    } else if (look.suite.high < allowance) {
        look.verdict = CiVerdict::no_regression;
    }
    return look;
}

int rounds_needed(double spread, const SequentialOptions& options) {
    const double allowance = std::log1p(options.max_slowdown);
    const double level = options.alpha / planned_looks(options);
    for (int n = 2; n < 100000; n++) {
        if (student_t_quantile(1 - level, n - 1.0) * spread / std::sqrt(n) < allowance) return n;
    }
    return 100000;
}

}  // namespace trainopt
