// The training step: every replica's forward and backward, then the update. With several
// replicas each runs on its own thread of a spinning pool (spin_pool.h: one job per step, since
// waking sleeping threads costs tens of microseconds), and a thread whose replica is done
// updates the parameters whose gradients every replica has finished (UpdateUnit). With one
// replica, its kernels and the update split their work across oneTBB's threads.
#pragma once

#include "model.h"
#include "tasks/task_spec.h"

namespace trainopt {

// Starts the spinning pool when there are several replicas. Call it once the parameters are
// initialised: its spinning threads would compete with oneTBB's during the initialisation.
void start_replica_threads(Model& model);

// Stops the pool's spinning threads (before the serial writing of the outputs).
void stop_replica_threads(Model& model);

// One step over the whole batch, inputs and targets (B,T) with total_rows = B*T, the update
// included; returns the mean loss (of the parameters before the update). t counts steps from 1.
float train_step(Model& model, const TrainSpec& ts, int t, const int* inputs, const int* targets,
                 int total_rows);

}  // namespace trainopt
