// Step-local verification, in trusted code: a window of steps recomputed with the reference
// kernels from a state the submission reached, and compared with what the submission did in
// those steps. Over a few steps, fp32 reorderings have no time to grow, so the per-step
// tolerances stay strict on tasks whose whole runs are chaotic (docs/security.md, "Chaotic
// tasks"; harness/replay.h runs the submission's side).
#pragma once

#include <cstdint>
#include <vector>

#include "contract/training_state.h"
#include "tasks/task_spec.h"

namespace trainopt {

// Steps [start, start + steps).
struct StepWindow {
    int start = 0;
    int steps = 0;
};

// `count` windows of `steps` steps in a run of `total` steps: one uniformly placed in each of
// `count` equal strata, so early and late steps are covered alike and windows never overlap.
// `random` must come from the harness's own randomness, drawn after the timed run.
// Requires count * steps <= total.
std::vector<StepWindow> pick_windows(int total, int count, int steps, uint64_t random);

// The segments a run is replayed in: [0, total) cut at every window's start and end, in order.
std::vector<StepWindow> replay_segments(const std::vector<StepWindow>& windows, int total);

// The state every run starts from: the seed's initial weights, zero moments, step 0.
TrainingState initial_state(const GPTConfig& config, uint64_t seed);

struct ReferenceSteps {
    std::vector<float> losses;  // one per step
    TrainingState end;
};

// The reference kernels' training of `steps` steps from `start` (step s), on the batches the
// seed gives steps s .. s + steps - 1.
ReferenceSteps run_reference_steps(const TaskSpec& task, const std::vector<int>& train_tokens,
                                   uint64_t seed, const TrainingState& start, int steps);

// How far a submission's window is from the reference's recomputation of it.
struct WindowDeviation {
    StepWindow window;
    double max_loss_diff = 0;  // nats, over the window's steps
    int worst_step = -1;
    double params_rel = 0;  // ||x_sub - x_ref|| / ||x_ref - x_start||, x the end state's part
    double m_rel = 0;
    double v_rel = 0;

    double state_rel() const;  // the largest of the three
};

WindowDeviation compare_window(const StepWindow& window, const TrainingState& start,
                               const ReferenceSteps& reference,
                               const std::vector<float>& submission_losses,
                               const TrainingState& submission_end);

}  // namespace trainopt
