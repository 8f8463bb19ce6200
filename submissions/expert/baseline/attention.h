// Causal self-attention, per batch row b and head h: out = softmax(q k^T / sqrt(hs)) v, each
// query against the keys at or before it. q, k and v are the head's hs = C/NH channels of the
// (B,T,3C) qkv tensor, out its channels of the (B,T,C) output.
//
// Heads of a multiple of 8 channels take the flash path: query tiles against only the keys
// they can see, each query's max and 1/sum kept (row_max, row_inv) and the (T,T) probabilities
// recomputed in the backward. Other heads run on sgemm and keep the probabilities (att).
#pragma once

#include <tbb/enumerable_thread_specific.h>

#include <vector>

namespace trainopt {

// Does a model of C channels in NH heads take the flash path?
bool uses_flash_attention(int C, int NH);

// One thread's scratch. Rows of the flash path's matrices are Tp >= T floats apart.
struct AttentionBuffers {
    std::vector<float> scores;     // (T,T) sgemm path: one head's scores
    std::vector<float> att, dpre;  // flash path: a block of queries' probabilities and their grads
    std::vector<float> kt, vt;     // (hs,Tp) flash path: one head's keys and values transposed
    std::vector<float> rowdot;     // (T) flash path: <dout, out> per query
};

// Per thread: each thread allocates its buffers on first use.
using AttentionScratch = tbb::enumerable_thread_specific<AttentionBuffers>;

AttentionScratch attention_scratch_create(int T, int C, int NH);

// out(B,T,C) from qkv(B,T,3C). The flash path writes row_max and row_inv (B,NH,T) and leaves
// att alone (it may be null); the sgemm path writes att (B,NH,T,T) and leaves the others.
void attention_forward(bool par, float* out, float* att, float* row_max, float* row_inv,
                       const float* qkv, int B, int T, int C, int NH, AttentionScratch& scratch);

// dqkv(B,T,3C), overwritten, from dout(B,T,C) and the forward's qkv, out and att or
// row_max and row_inv.
void attention_backward(bool par, float* dqkv, const float* dout, const float* qkv,
                        const float* out, const float* att, const float* row_max,
                        const float* row_inv, int B, int T, int C, int NH,
                        AttentionScratch& scratch);

}  // namespace trainopt
