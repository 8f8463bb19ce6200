// The kernel API: every operation of the GPT training step, forward and backward side by side.
//
// Shapes use B = batch, T = sequence length, C = channels (d_model), OC = output channels,
// NH = heads, V = vocabulary. Every tensor is a dense row-major fp32 array. Backward kernels
// ACCUMULATE (+=) into their gradient outputs, so a tensor used twice (the tied wte, a residual
// stream) receives the sum of its gradients; the caller zeroes gradients once per step.
//
// A submission replaces kernels by filling a KernelTable with its own functions (see
// kernels/submission.cpp and kernels/registry.h), or replaces the training loop itself
// (baseline/train.cpp). Either way the trained model must stay the same within tolerances.
#pragma once

#include <cstddef>

namespace trainopt {

struct KernelTable {
    // encoder: out(B,T,C) = wte(V,C)[inp(B,T)] + wpe(T,C)[t]
    void (*encoder_forward)(float* out, const int* inp, const float* wte, const float* wpe, int B,
                            int T, int C);
    void (*encoder_backward)(float* dwte, float* dwpe, const float* dout, const int* inp, int B,
                             int T, int C);

    // layernorm over the last axis: out(B,T,C), mean(B,T), rstd(B,T), weight(C), bias(C)
    void (*layernorm_forward)(float* out, float* mean, float* rstd, const float* inp,
                              const float* weight, const float* bias, int B, int T, int C);
    void (*layernorm_backward)(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, const float* mean,
                               const float* rstd, int B, int T, int C);

    // matmul: out(B,T,OC) = inp(B,T,C) @ weight(OC,C)^T + bias(OC); bias may be null
    void (*matmul_forward)(float* out, const float* inp, const float* weight, const float* bias,
                           int B, int T, int C, int OC);
    void (*matmul_backward)(float* dinp, float* dweight, float* dbias, const float* dout,
                            const float* inp, const float* weight, int B, int T, int C, int OC);

    // causal multi-head self-attention.
    // inp(B,T,3C) holds q,k,v; preatt and att are (B,NH,T,T) scratch/saved tensors; out(B,T,C)
    void (*attention_forward)(float* out, float* preatt, float* att, const float* inp, int B, int T,
                              int C, int NH);
    void (*attention_backward)(float* dinp, float* dpreatt, float* datt, const float* dout,
                               const float* inp, const float* att, int B, int T, int C, int NH);

    // GELU (tanh approximation), elementwise over N values
    void (*gelu_forward)(float* out, const float* inp, int N);
    void (*gelu_backward)(float* dinp, const float* inp, const float* dout, int N);

    // residual: out(N) = inp1(N) + inp2(N)
    void (*residual_forward)(float* out, const float* inp1, const float* inp2, int N);
    void (*residual_backward)(float* dinp1, float* dinp2, const float* dout, int N);

    // softmax over the vocabulary: probs(B,T,V) from logits(B,T,V)
    void (*softmax_forward)(float* probs, const float* logits, int B, int T, int V);
    // cross-entropy: losses(B,T) = -log probs[target]
    void (*crossentropy_forward)(float* losses, const float* probs, const int* targets, int B,
                                 int T, int V);
    // fused softmax + cross-entropy backward: dlogits(B,T,V) += (probs - onehot) * dlosses(B,T)
    void (*crossentropy_softmax_backward)(float* dlogits, const float* dlosses, const float* probs,
                                          const int* targets, int B, int T, int V);

    // AdamW over n parameters; t is the 1-based step number used for bias correction
    void (*adamw_update)(float* params, const float* grads, float* m, float* v, size_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int t);
};

// The naive, single-threaded fp32 reference kernels (kernels/reference.cpp).
KernelTable reference_kernels();

// Hook for a submission: overwrite any entries of `table` (kernels/submission.cpp).
// The pristine version leaves the table unchanged.
void apply_submission_kernels(KernelTable& table);

}  // namespace trainopt
