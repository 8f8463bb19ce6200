// Built-in twins of the reference trainer for `trainopt calibrate` (docs/tolerances.md,
// "Calibrating a task"): the reference training run in-process with one thing changed. One twin
// is legitimate (the same math in other fp32 summation orders), the others cheat the way real
// submissions could (lower precision, skipped work, coarser math). Trusted code: only these
// built-in kernels run, never a submission's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "contract/training_state.h"
#include "harness/step_check.h"
#include "kernels/kernels.h"
#include "tasks/task_spec.h"

namespace trainopt {

enum class TwinKind { legitimate, cheating };

struct Twin {
    std::string name;         // "reordered", "bf16-matmul", ...
    std::string description;  // one line, for the table's legend
    TwinKind kind = TwinKind::legitimate;
    KernelTable kernels{};
    double skip_fraction = 0;  // this fraction of the steps (at least one) makes no update
    int frozen_layer = -1;     // this transformer layer's parameters are never updated
    // cheating: enough that one task of the suite catches it (an approximation that acts only
    // through a bias of the loss, which the suite's verification task is built to show:
    // docs/tolerances.md, "Approximated math"); otherwise every task must
    bool suite_wide = false;
};

// The reference kernels, unchanged: what every twin is compared with.
Twin reference_twin();

// reordered (legitimate), then bf16-matmul, skip-5%, frozen-layer, coarse-exp (cheating).
std::vector<Twin> calibration_twins();

// The reference kernels with every fp32 reduction in another order: matmuls in 8 pairwise-summed
// lanes and reversed loops, layernorm, softmax and attention sums reversed. Same math.
KernelTable reordered_kernels();

// Steps [0, steps) that make no update when `fraction` of them are skipped: round(fraction *
// steps), at least one, spread evenly over the run.
std::vector<int> skipped_steps(int steps, double fraction);

// A twin's whole training run on the seed's batches, with its state captured at the start and
// end of each window (in window order).
struct TwinRun {
    std::vector<float> losses;  // one per step
    std::vector<float> params;  // final weights
    std::vector<TrainingState> window_starts;
    std::vector<TrainingState> window_ends;
};

// `stop` (may be null) is asked before every step: when it returns true the run ends there,
// incomplete.
TwinRun run_twin(const TaskSpec& task, const std::vector<int>& train_tokens, uint64_t seed,
                 const Twin& twin, const std::vector<StepWindow>& windows,
                 bool (*stop)() = nullptr);

}  // namespace trainopt
