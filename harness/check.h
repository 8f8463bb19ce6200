// trainopt check: a quick correctness check while iterating, not the official verification. The
// submission's trainer (through the build cache) runs the first N steps of one task with a fixed
// seed, and trusted code compares it with the baseline's run of the same truncated task (its
// outputs through the baseline cache): every step's loss, the first and the worst step over the
// tolerance, the held-out loss, the final weights and their distance per tensor. It prints a
// verdict, PASS or FAIL, and never a score or a time: nothing is timed against a cached
// reference, and N steps of one task say nothing about the rest of a run or of the suite.
//
// Truncating: the task is derived from the suite's task file with [train] steps = N and
// everything else unchanged (a task checked "local" is checked "trajectory": over a few steps
// fp32 reorderings have no time to grow, which is what its step-local windows rely on too), and
// written into the private work directory; both trainers read that file, so the reference is
// computed for exactly the truncated task.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/evaluation.h"
#include "harness/score.h"
#include "tasks/task_spec.h"

namespace trainopt {

constexpr int kCheckDefaultSteps = 20;
constexpr uint64_t kCheckSeed = 1;  // the base seed: fixed, so the reference stays cached

struct CheckOptions {
    // the submission, the suite the task comes from, cores, limits, sandbox and both caches
    // (`seed` is the base seed, kCheckSeed unless given)
    ScoreOptions run;
    std::string task;  // empty: the suite's task with the cheapest training step
    int steps = kCheckDefaultSteps;
};

struct CheckReport {
    // non-empty: the command line asks for what the suite does not have (an unknown task, more
    // steps than it trains); nothing ran
    std::string usage_problem;
    std::string submission;
    std::string submission_kind;
    bool trainer_from_build_cache = false;
    BuildInfo build;  // how the trainer was obtained (built incrementally, how many files)
    std::string suite;
    std::string task;
    int steps = 0;       // checked
    int task_steps = 0;  // the task's own
    TaskSpec checked;    // the truncated task (its tolerances)
    std::vector<std::string> warnings;
    std::vector<std::string> rejected;  // refused by intake, build or audit: nothing ran
    bool ran = false;                   // `rep` holds the verified run
    RepResult rep;

    bool passed() const {
        return usage_problem.empty() && rejected.empty() && ran && rep.verification.valid();
    }
};

// The task of `suite` the check runs: `name`, or with an empty name the one whose training step
// takes the fewest FLOPs (the first such in the suite's order). Fails naming the suite's tasks.
Result<TaskSpec> choose_check_task(const Suite& suite, const std::string& name);

// `task` with [train] steps = `steps` and checked "trajectory", everything else unchanged,
// written to DIR/NAME.toml (the file its trainers read) and loaded back from there. Requires
// 1 <= steps <= task.train.steps.
Result<TaskSpec> truncated_task(const TaskSpec& task, int steps, const std::string& dir);

// Runs the check. Fails when the harness cannot go on (trusted inputs, the work directory, an
// interrupt, a baseline that fails); a submission that fails is a report that did not pass.
Result<CheckReport> run_check(const CheckOptions& options);

// The terminal rendering: the verdict, that this is not the official verification, the per-step
// losses (all of them, or around the steps that matter), the findings and the per-tensor table.
// Every untrusted string goes through terminal_safe.
std::string check_to_text(const CheckReport& report);

}  // namespace trainopt
