#include "adamw.h"

#include <cmath>

namespace trainopt {
namespace {

// AdamW on n parameters with gradient ga (+ gb when kTwoReplicas: summed in registers, not
// written back, since this pass is memory-bound).
template <bool kTwoReplicas>
void adamw_kernel(float* __restrict params, float* __restrict m, float* __restrict v,
                  const float* __restrict ga, const float* __restrict gb, int n,
                  const TrainSpec& ts, float c1, float c2) {
    const float beta1 = ts.beta1, beta2 = ts.beta2, lr = ts.lr, eps = ts.eps;
    const float decay = ts.weight_decay;
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float gr = kTwoReplicas ? ga[i] + gb[i] : ga[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gr;
        float vi = beta2 * v[i] + (1.0f - beta2) * gr * gr;
        m[i] = mi;
        v[i] = vi;
        params[i] -= lr * ((mi * c1) / (sqrtf(vi * c2) + eps) + decay * params[i]);
    }
}

}  // namespace

void adamw_range(Model& model, const TrainSpec& ts, int t, int r0, int r1) {
    const float c1 = 1.0f / (1.0f - powf(ts.beta1, t));
    const float c2 = 1.0f / (1.0f - powf(ts.beta2, t));
    float* params = model.params.data() + r0;
    float* m = model.m.data() + r0;
    float* v = model.v.data() + r0;
    const int count = (int)model.replicas.size(), n = r1 - r0;
    float* g0 = model.replicas[0].grads.data() + r0;
    if (count == 2) {
        const float* g1 = model.replicas[1].grads.data() + r0;
        adamw_kernel<true>(params, m, v, g0, g1, n, ts, c1, c2);
        return;
    }
    for (int r = 1; r < count; r++) {
        const float* gr = model.replicas[r].grads.data() + r0;
#pragma omp simd
        for (int i = 0; i < n; i++) g0[i] += gr[i];
    }
    adamw_kernel<false>(params, m, v, g0, nullptr, n, ts, c1, c2);
}

}  // namespace trainopt
