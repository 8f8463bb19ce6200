// The paired, sequential regression test of `trainopt ci` (docs/ci.md, "The statistics"): the
// previous and the current trainer run on the same seeds, interleaved, and each pair gives a
// log-ratio of wall times. Rounds are added until the test can say REGRESSION or NO REGRESSION
// with confidence, or the budget runs out (UNDECIDED), in the manner of Chromium's Pinpoint.
//
// A round runs every task of the suite once with each trainer; its value is the mean over the
// tasks of log(current / previous), so every task weighs the same and the rounds are
// independent repetitions of one measurement. At each look, a one-sided Student-t interval on
// the rounds' mean at level alpha / looks (Bonferroni over the planned looks, so the false-alarm
// rate over the whole sequence stays below alpha) decides:
//   REGRESSION     its lower bound is above log(1 + max_slowdown): slower than allowed;
//   NO REGRESSION  its upper bound is below log(1 + max_slowdown): within the allowance;
//   otherwise      more rounds; UNDECIDED when the budget is spent.
// Each task is also tested on its own (level further divided by the number of tasks): a task
// confidently slower than allowed is a REGRESSION even when the suite's mean is not.
#pragma once

#include <string>
#include <vector>

namespace trainopt {

struct SequentialOptions {
    double max_slowdown = 0.05;  // the allowance: slower than this is a regression
    double alpha = 0.01;         // false-alarm rate over the whole sequence of looks
    int min_rounds = 3;          // no look before this many rounds
    int max_rounds = 48;         // the last look
};

// The rounds after which the test looks: min_rounds, then about 1.35x the previous, up to
// max_rounds (3, 4, 5, 7, 9, 12, 16, 22, 30, 41, 48 by default), plus one more for a look forced by
// the budget.
std::vector<int> look_schedule(const SequentialOptions& options);
int planned_looks(const SequentialOptions& options);

enum class CiVerdict { regression, no_regression, undecided };
std::string to_string(CiVerdict verdict);  // "REGRESSION", "NO REGRESSION", "UNDECIDED"

// A mean log-ratio (current over previous) with its one-sided bounds at the look's level; the
// spread is the standard deviation of one round's value, the test's measured noise floor.
struct PairedEstimate {
    int rounds = 0;
    double mean = 0;  // log(current / previous); exp(mean) - 1 is the relative change
    double low = 0;
    double high = 0;
    double spread = 0;
};

struct SequentialLook {
    CiVerdict verdict = CiVerdict::undecided;  // undecided: look again after more rounds
    PairedEstimate suite;
    std::vector<PairedEstimate> tasks;
    std::vector<size_t> regressed_tasks;  // confidently slower than allowed on their own
    double suite_level = 0;               // the one-sided level of the suite's bounds
    double task_level = 0;
};

// `log_ratios[round][task]` = log(current seconds / previous seconds) of one pair; every round
// has every task. Fewer than two rounds give an undecided look with infinite bounds.
SequentialLook look_at_rounds(const std::vector<std::vector<double>>& log_ratios,
                              const SequentialOptions& options);

// How many rounds a suite spread of `spread` needs before an unchanged trainer (mean 0) can be
// told NO REGRESSION (the bound below the allowance), at the level of `options`' looks.
int rounds_needed(double spread, const SequentialOptions& options);

// Student's t distribution: the p-quantile for `dof` degrees of freedom (p in (0, 1)).
double student_t_quantile(double p, double dof);

}  // namespace trainopt
