// The LM head, tied to the token embedding: logits = lnf wte^T, then softmax and cross-entropy
// against the targets. The backward of the loss (dlogits) is computed in the same pass as the
// loss itself, in place of the logits. Two forms:
// - logits (BT,V): the product is a linear layer (matmul.h), softmax_xent the loss;
// - logits transposed (V,BT), for a wide vocabulary: lm_head_forward_transposed and
//   lm_head_backward_transposed, products and an online softmax in chunks of the vocabulary.
// The loss is the mean over the whole batch, so dloss = 1 / (rows of the whole batch), which
// is more than a replica's BT rows when the batch is split.
#pragma once

#include "kernels/gpt.h"

namespace trainopt {

// losses(BT) from logits(BT,V); the logits become dlogits in place.
void softmax_xent(bool par, float* logits, float* losses, const int* targets, int BT, int V,
                  float dloss);

// How many vocabulary chunks the transposed head runs in (rows of chunk_max below).
int lm_head_chunks(int V);

// logitsT(V,BT) = exp(wte(V,C) lnfT(C,BT) - chunk_max) chunk by chunk, chunk_max (chunks, BT)
// the running max after each chunk; col_sum (BT) ends as the sum of exp(logit - final max),
// the final max being chunk_max's last row; losses (BT). BT must be a multiple of kVecLanes.
void lm_head_forward_transposed(float* logitsT, float* losses, float* chunk_max, float* col_sum,
                                const float* wte, const float* lnfT, const int* targets, int BT,
                                int C, int V, KernelProfile& profile);

// Chunk by chunk: dlogits in place (exp(logit - max) * dloss / sum, minus dloss at the
// target), then that chunk's rows of dwte(V,C) (overwritten) and its share of dlnf(BT,C)
// (overwritten by the first chunk). chunk_max and col_sum as the forward left them; col_sum
// becomes dloss / sum; col_factor (BT) is scratch.
void lm_head_backward_transposed(float* logitsT, float* dlnf, float* dwte, const float* chunk_max,
                                 float* col_sum, float* col_factor, const float* wte,
                                 const float* lnf, const int* targets, int BT, int C, int V,
                                 float dloss, KernelProfile& profile);

}  // namespace trainopt
