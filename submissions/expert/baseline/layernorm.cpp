#include "layernorm.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "parallel_range.h"

namespace trainopt {

void layernorm_forward(bool par, float* out, float* mean, float* rstd, const float* inp,
                       const float* w, const float* b, int BT, int C) {
    parallel_range(par, BT, (double)BT * C * 4, 32, [&](int r0, int r1) {
        for (int i = r0; i < r1; i++) {
            const float* x = inp + (size_t)i * C;
            float m = 0.0f;
#pragma omp simd reduction(+ : m)
            for (int j = 0; j < C; j++) m += x[j];
            m /= C;
            float v = 0.0f;
#pragma omp simd reduction(+ : v)
            for (int j = 0; j < C; j++) v += (x[j] - m) * (x[j] - m);
            v /= C;
            const float s = 1.0f / sqrtf(v + 1e-5f);
            float* o = out + (size_t)i * C;
#pragma omp simd
            for (int j = 0; j < C; j++) o[j] = s * (x[j] - m) * w[j] + b[j];
            mean[i] = m;
            rstd[i] = s;
        }
    });
}

void layernorm_backward(bool par, float* dinp, float* dw, float* db, const float* dout,
                        const float* inp, const float* w, const float* mean, const float* rstd,
                        const float* add, int BT, int C) {
    parallel_range(par, BT, (double)BT * C * 4, 32, [&](int r0, int r1) {
        for (int i = r0; i < r1; i++) {
            const float* d = dout + (size_t)i * C;
            const float* x = inp + (size_t)i * C;
            const float m = mean[i], s = rstd[i];
            float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
            for (int j = 0; j < C; j++) {
                float dn = w[j] * d[j];
                dnorm_mean += dn;
                dnorm_norm_mean += dn * (x[j] - m) * s;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            float* o = dinp + (size_t)i * C;
            const float* a = add != nullptr ? add + (size_t)i * C : nullptr;
#pragma omp simd
            for (int j = 0; j < C; j++) {
                float norm = (x[j] - m) * s;
                float dval = (w[j] * d[j] - dnorm_mean - norm * dnorm_norm_mean) * s;
                o[j] = (a ? a[j] : 0.0f) + dval;
            }
        }
    });
    // parameter gradients: a serial pass keeps the summation order fixed (deterministic)
    std::fill(dw, dw + C, 0.0f);
    std::fill(db, db + C, 0.0f);
    for (int i = 0; i < BT; i++) {
        const float* d = dout + (size_t)i * C;
        const float* x = inp + (size_t)i * C;
        const float m = mean[i], s = rstd[i];
#pragma omp simd
        for (int j = 0; j < C; j++) {
            db[j] += d[j];
            dw[j] += (x[j] - m) * s * d[j];
        }
    }
}

}  // namespace trainopt
