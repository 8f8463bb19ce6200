// Step-local verification's untimed side (docs/security.md, "Chaotic tasks"). After the timed
// run, the submission's trainer is run again, untimed, in segments cut at windows of steps
// picked only then: each segment resumes from the state the previous one wrote (as the harness
// re-serialised it) and must reproduce the timed run's losses bit for bit, the last one its
// final weights. Each window's steps are segments of one step, each recomputed with the reference
// kernels from the state the submission was in before it (harness/step_check.h), and must match
// within the task's step tolerances. A trainer that does
// less work in the timed run than in the windows cannot reproduce the timed run from states it
// did not compute; one that does the same work everywhere is checked on every window.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "harness/evaluation.h"
#include "harness/step_check.h"
#include "harness/verify.h"

namespace trainopt {

struct ReplayCheck {
    std::vector<std::string> reasons;  // why not, one sentence each; empty: every check held
    std::vector<WindowDeviation> windows;
    int segments = 0;  // segments run
};

// Replays the timed run of `seed` (its outputs `timed`) in segments and checks its windows.
// `random` picks the windows and must be drawn after the timed run. Fails only when the
// harness was interrupted.
Result<ReplayCheck> replay_and_check_windows(const HarnessContext& ctx,
                                             const TrainerBuild& submission, const TaskSpec& task,
                                             const TaskData& data, uint64_t seed,
                                             const RunOutputs& timed, uint64_t random);

}  // namespace trainopt
