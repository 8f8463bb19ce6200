// One replica's forward and backward pass over its rows of the batch: the GPT-2 layer stack
// of the reference (kernels/gpt.cpp), each kernel timed into the replica's profile.
#pragma once

#include <atomic>

#include "model.h"

namespace trainopt {

// Activations, per-row losses and dlogits (in rep.a.logits) for rep's rows of inputs and
// targets (B,T); returns the sum of its rows' losses. total_rows is the whole batch's B*T:
// the loss is the mean over all of it.
float replica_forward(const Model& model, Replica& rep, const int* inputs, const int* targets,
                      int total_rows);

// The gradients of all parameters into rep.g (overwritten). stages_done (may be null) is
// raised after each stage whose gradients are then final: the LM head and final layernorm,
// each layer, the embeddings (see StepProgress).
void replica_backward(const Model& model, Replica& rep, const int* inputs, const int* targets,
                      int total_rows, std::atomic<int>* stages_done);

}  // namespace trainopt
