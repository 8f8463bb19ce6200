// Step-local verification, in trusted code: a window of steps recomputed with the reference
// kernels from a state the submission reached, and compared with what the submission did in
// those steps. Over a few steps, fp32 reorderings have no time to grow, so the per-step
// tolerances stay strict on tasks whose whole runs are chaotic (docs/security.md, "Chaotic
// tasks"; harness/replay.h runs the submission's side).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "contract/model_layout.h"
#include "contract/result.h"
#include "contract/training_state.h"
#include "tasks/task_spec.h"

namespace trainopt {

// ||a - b||, in double precision.
double l2_distance(const std::vector<float>& a, const std::vector<float>& b);

// ||sub - ref|| relative to how far the reference moved from start (absolute when it did not):
// the whole run's weight distance (weights_rel) and a window's state distance.
double relative_distance(const std::vector<float>& sub, const std::vector<float>& ref,
                         const std::vector<float>& start);

// A parameter tensor of the canonical layout (contract/model_layout.h), or one layer's slice of
// a tensor stacked over layers (all but wte, wpe, lnfw and lnfb), so one layer that went wrong
// does not hide among the others.
struct ParamSlice {
    int tensor = 0;  // index into kParamTensorNames
    int layer = -1;  // -1: a tensor that is not stacked over layers
    size_t offset = 0;
    size_t size = 0;

    std::string name() const;  // "wte", "qkvw of layer 0"
};

// Every slice of the layout, in canonical order.
std::vector<ParamSlice> param_slices(const GPTConfig& config);

// How far a submission's slice of the weights is from the reference's.
struct TensorDistance {
    ParamSlice slice;
    // ||sub - ref|| / ||ref - start||: about 1 when the submission left in place what the
    // reference moved; infinite when the reference did not move it and the submission did
    double rel = 0;
    double moved = 0;  // ||ref - start||: how far the reference's training moved it
};

// The per-slice distances of `sub` from `ref`, relative to the reference's update from `start`,
// in canonical order. The whole run's final weights (verify.h) and a window's end state use it.
std::vector<TensorDistance> tensor_distances(const std::vector<float>& sub,
                                             const std::vector<float>& ref,
                                             const std::vector<float>& start,
                                             const GPTConfig& config);

// The kernels whose backward pass writes a parameter tensor's gradient in the model's step
// (kernels/gpt.cpp), for telling an agent where to look when that tensor went wrong: e.g.
// "matmul_backward of the attention's qkv projection" for qkvw.
const char* gradient_kernel_of(int tensor);

// Steps [start, start + steps).
struct StepWindow {
    int start = 0;
    int steps = 0;
};

// `count` windows of `steps` steps in a run of `total` steps, placed uniformly and not
// overlapping (so no step of the run, a boundary between regimes included, is out of their
// reach); when they cover so much of the run that such draws keep overlapping, one uniformly in
// each of `count` equal strata. `random` must come from the harness's own randomness, drawn
// after the timed run. Requires count * steps <= total.
std::vector<StepWindow> pick_windows(int total, int count, int steps, uint64_t random);

// Every step of `windows` as a window of one step, in order. A window is checked one step at a
// time, each step recomputed from the state the submission was in before it: over one step fp32
// reorderings have no time to grow, while over 20 steps early in a real-text run they reached
// 4e-4 nats (docs/tolerances.md).
std::vector<StepWindow> single_steps(const std::vector<StepWindow>& windows);

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

// The reference kernels' loss at `state`'s step on the batch the seed gives it: the first loss
// of run_reference_steps from `state`, by a forward pass alone.
float reference_loss(const TaskSpec& task, const std::vector<int>& train_tokens, uint64_t seed,
                     const TrainingState& state);

// How far a submission's window is from the reference's recomputation of it.
struct WindowDeviation {
    StepWindow window;
    double max_loss_diff = 0;  // nats, over the window's steps
    int worst_step = -1;
    // ||x_sub - x_ref|| / ||x_ref - x_start|| of the end state's weights and moments
    double params_rel = 0;
    double m_rel = 0;
    double v_rel = 0;
    // the same per parameter tensor, the largest: about 1 when the submission left a tensor in
    // place that the reference moved, however little (a small tensor left untrained hides in
    // params_rel)
    double tensor_rel = 0;
    std::string worst_tensor;
    // a parameter tensor the reference's steps from the submission's state left exactly where it
    // was although its gradient was not zero: moments that freeze it (empty: none)
    std::string frozen_tensor;
    // the reference's AdamW step from the submission's state: the RMS over the parameters of
    // m_hat / (sqrt(v_hat) + eps) after the step, the smallest over the window's steps. About 0.1
    // to 1 in training; near 0 in a state that does not train (zero gradients, inflated v)
    double min_adam_step = HUGE_VAL;
    int weakest_step = -1;

    double state_rel() const;  // the largest of params_rel, m_rel and v_rel
};

// A tensor whose tensor_rel reaches this was not trained: the submission reproduced less than a
// tenth of the reference's movement of it. Legitimate reorderings stay far below (at most 0.14 on
// the chaotic real-text task, docs/tolerances.md).
constexpr double kUntrainedTensorRel = 0.9;

// A window step whose reference AdamW step (WindowDeviation::min_adam_step) is below this comes
// from a state that does not train: the all-zero model (every gradient exactly 0) or moments
// whose second moment dwarfs the gradients. Such a fixed point lets a trainer hand the windows
// states that every check of one step accepts while its timed run trains little
// (docs/security.md, "Chaotic tasks"). Legitimate runs stay far above (docs/tolerances.md).
constexpr double kMinAdamStep = 1e-2;

// RMS over the parameters of m_hat / (sqrt(v_hat) + eps) of a state after `step` AdamW updates.
double adam_step_rms(const TrainingState& state, const TrainSpec& train);

WindowDeviation compare_window(const StepWindow& window, const TrainingState& start,
                               const ReferenceSteps& reference,
                               const std::vector<float>& submission_losses,
                               const TrainingState& submission_end, const GPTConfig& config);

// One step checked from the state the submission was in before it (`before`, at step s): the
// reference kernels' step s from `before`, compared with the submission's loss at step s and the
// state it reached after it.
WindowDeviation check_step(const TaskSpec& task, const std::vector<int>& train_tokens,
                           uint64_t seed, const TrainingState& before, float submission_loss,
                           const TrainingState& after);

// Folds one step's deviation into the deviation of the window it belongs to: the largest of each
// measure, and the first frozen tensor found.
void include_step(WindowDeviation& window, const WindowDeviation& step);

// Why a state a submission wrote cannot be one AdamW reaches, if it cannot: a first moment
// larger than the second moment allows (|m| <= sqrt(K v) for every history of gradients, K from
// beta1 and beta2), or a bias-corrected second moment that overflows. Such moments can freeze a
// parameter under the reference's own update.
Status check_moments_plausible(const TrainingState& state, const TrainSpec& train);

}  // namespace trainopt
