#include "encoder.h"

#include <cstddef>

namespace trainopt {

void encoder_forward(float* out, const int* inputs, const float* wte, const float* wpe, int B,
                     int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float* o = out + ((size_t)b * T + t) * C;
            const float* e = wte + (size_t)inputs[b * T + t] * C;
            const float* p = wpe + (size_t)t * C;
#pragma omp simd
            for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
        }
    }
}

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* inputs, int B, int T,
                      int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float* d = dout + ((size_t)b * T + t) * C;
            float* de = dwte + (size_t)inputs[b * T + t] * C;
            float* dp = dwpe + (size_t)t * C;
#pragma omp simd
            for (int i = 0; i < C; i++) {
                de[i] += d[i];
                dp[i] += d[i];
            }
        }
    }
}

}  // namespace trainopt
