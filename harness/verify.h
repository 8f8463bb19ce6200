// Verification in trusted code: did the submission train the same model? Compares a run's
// outputs with the baseline's outputs for the same seed. Nothing the submission printed about
// itself is used except what is checked here.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "contract/checkpoint.h"
#include "contract/trainer_io.h"
#include "contract/training_state.h"
#include "harness/step_check.h"
#include "tasks/task_spec.h"

namespace trainopt {

struct RunOutputs {
    std::vector<float> losses;  // one per step
    Checkpoint checkpoint;
    std::string nonce;
    std::map<std::string, double> kernel_seconds;  // self-reported, advisory
};

// A run's outputs as read_run_outputs found them: usable when there is no problem.
struct CollectedOutputs {
    RunOutputs outputs;
    std::vector<std::string> problems;  // one sentence per output missing or malformed
};

// Reads DIR/losses.csv, final.ckpt and meta.json (without following links, regular files only,
// each within its cap) and checks their structure against the task; the checkpoint's header is
// checked against the task before its parameters are read.
CollectedOutputs read_run_outputs(const std::string& dir, const TaskSpec& task);

// A segment's outputs (contract/trainer_io.h): its steps' losses and the state it ended in.
struct SegmentOutputs {
    std::vector<float> losses;  // one per step of the segment
    TrainingState end;
    std::string nonce;
};

// Reads DIR/losses.csv, state.bin and meta.json of a run of `segment` as read_run_outputs reads
// a whole run's; the state must be the one after the segment's last step. Fails with the first
// problem.
Result<SegmentOutputs> read_segment_outputs(const std::string& dir, const TaskSpec& task,
                                            const StepWindow& segment);

// Mean loss of the checkpoint on the first eval_batches * batch held-out windows, computed with
// the reference kernels.
double heldout_loss(const TaskSpec& task, const std::vector<float>& params,
                    const std::vector<int>& heldout_tokens);

struct Comparison {
    double max_loss_diff = 0;  // nats, over all steps
    int worst_step = -1;
    // the first step whose |delta| is over the task's loss_abs (-1: none), and its |delta|
    int first_step_over = -1;
    double first_diff_over = 0;
    double heldout_reference = 0;
    double heldout_submission = 0;
    double heldout_diff = 0;
    double weight_distance = 0;  // ||w_sub - w_ref|| / ||w_ref - w_init||
    // the same per parameter tensor (per layer), the farthest first; tasks checked "trajectory"
    // only (a chaotic run's final weights part from the reference's legitimately)
    std::vector<TensorDistance> tensors;
    // check = "local": the windows replayed and recomputed with the reference kernels
    std::vector<WindowDeviation> windows;
    // the model's quality, for reports: final_training_loss of each run's losses (the held-out
    // losses are heldout_reference and heldout_submission); set, with `compared`, by verify_run
    double final_loss_reference = 0;
    double final_loss_submission = 0;
    bool compared = false;  // verify_run compared the outputs (they were usable)
    // every step's loss of both runs, as compared (trainopt check prints them)
    std::vector<float> reference_losses;
    std::vector<float> submission_losses;
};

// The absolute training loss a run ended with: the mean of its last min(10, steps) per-step
// losses (0 without any).
double final_training_loss(const std::vector<float>& losses);

// What verify_run found: the run is valid when there is no reason against it.
struct Verification {
    std::vector<std::string> reasons;  // why not, one sentence each
    Comparison comparison;

    bool valid() const { return reasons.empty(); }
};

struct ReferenceRun {
    RunOutputs outputs;
    std::vector<float> init_params;
    double heldout = 0;
};

Verification verify_run(const TaskSpec& task, const ReferenceRun& reference,
                        const RunOutputs& submission, const std::string& expected_nonce,
                        const std::vector<int>& heldout_tokens);

}  // namespace trainopt
