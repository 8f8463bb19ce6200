// The AdamW update, with the replicas' gradients summed on the way.
#pragma once

#include "model.h"
#include "tasks/task_spec.h"

namespace trainopt {

// Sums the replicas' gradients of params[r0, r1) (in replica order, so the result is
// deterministic) and applies AdamW step t (counted from 1) to them, in one pass. The sum is
// left in replica 0's gradients when there are more than two replicas.
void adamw_range(Model& model, const TrainSpec& ts, int t, int r0, int r1);

}  // namespace trainopt
