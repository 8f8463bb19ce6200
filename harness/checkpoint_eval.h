// `trainopt eval`: the quality of a saved checkpoint on a task, measured in trusted code. The
// checkpoint is read like a run's outputs (no link followed, a regular file of exactly the
// task's checkpoint size) and parsed with the contract's checks; the losses are computed with
// the reference kernels on data the harness regenerates from the task.
#pragma once

#include <string>

#include "contract/result.h"
#include "tasks/task_spec.h"

namespace trainopt {

struct CheckpointEvaluation {
    int steps = 0;               // steps trained, from the checkpoint's header
    double heldout_loss = 0;     // heldout_loss (harness/verify.h) on the task's held-out tokens
    double training_loss = 0;    // as many windows, spread evenly over the training split
    int batches = 0;             // batches of each (task.eval_batches)
    int batch = 0, context = 0;  // B x T tokens per batch
};

// Reads the checkpoint at `path` for `task`'s model (any step count) and computes its losses.
// Fails naming the file when it is missing, a link, not a regular file, of the wrong size or
// shape, or holds non-finite parameters, and when the task's data cannot be generated.
Result<CheckpointEvaluation> evaluate_checkpoint(const TaskSpec& task, const std::string& path);

}  // namespace trainopt
