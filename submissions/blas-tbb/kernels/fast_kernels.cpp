// OpenBLAS matmuls and oneTBB-parallel loops. Same math as kernels/reference.cpp; only the
// order of floating-point sums changes.
#include <cblas.h>
#include <tbb/parallel_for.h>

#include <cmath>
#include <cstddef>
#include <vector>

namespace trainopt {

void fast_matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                         int B, int T, int C, int OC) {
    const int BT = B * T;
    if (bias != nullptr) {
        for (int i = 0; i < BT; i++) {
            for (int o = 0; o < OC; o++) out[(size_t)i * OC + o] = bias[o];
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, OC, C, 1.0f, inp, C, weight, C,
                bias != nullptr ? 1.0f : 0.0f, out, OC);
}

void fast_matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const float* weight, int B, int T, int C, int OC) {
    const int BT = B * T;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, C, OC, 1.0f, dout, OC, weight, C,
                1.0f, dinp, C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, BT, 1.0f, dout, OC, inp, C, 1.0f,
                dweight, C);
    if (dbias != nullptr) {
        for (int i = 0; i < BT; i++) {
            const float* row = dout + (size_t)i * OC;
            for (int o = 0; o < OC; o++) dbias[o] += row[o];
        }
    }
}

void fast_attention_forward(float* out, float* preatt, float* att, const float* inp, int B, int T,
                            int C, int NH) {
    const int C3 = C * 3, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    tbb::parallel_for(0, B * NH, [&](int bh) {
        const int b = bh / NH, h = bh % NH;
        for (int t = 0; t < T; t++) {
            const float* q = inp + (size_t)b * T * C3 + t * C3 + h * hs;
            float* pre = preatt + ((size_t)b * NH + h) * T * T + (size_t)t * T;
            float* a = att + ((size_t)b * NH + h) * T * T + (size_t)t * T;
            float maxval = -10000.0f;
            for (int t2 = 0; t2 <= t; t2++) {
                const float* k = inp + (size_t)b * T * C3 + t2 * C3 + h * hs + C;
                float v = 0.0f;
                for (int i = 0; i < hs; i++) v += q[i] * k[i];
                v *= scale;
                if (v > maxval) maxval = v;
                pre[t2] = v;
            }
            float sum = 0.0f;
            for (int t2 = 0; t2 <= t; t2++) {
                a[t2] = expf(pre[t2] - maxval);
                sum += a[t2];
            }
            const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
            for (int t2 = 0; t2 <= t; t2++) a[t2] *= inv;
            for (int t2 = t + 1; t2 < T; t2++) a[t2] = 0.0f;
            float* o = out + (size_t)b * T * C + t * C + h * hs;
            for (int i = 0; i < hs; i++) o[i] = 0.0f;
            for (int t2 = 0; t2 <= t; t2++) {
                const float* v = inp + (size_t)b * T * C3 + t2 * C3 + h * hs + 2 * C;
                for (int i = 0; i < hs; i++) o[i] += a[t2] * v[i];
            }
        }
    });
}

void fast_attention_backward(float* dinp, float* dpreatt, float* datt, const float* dout,
                             const float* inp, const float* att, int B, int T, int C, int NH) {
    const int C3 = C * 3, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    // (b, h) pairs touch disjoint slices of dinp, so they run in parallel safely
    tbb::parallel_for(0, B * NH, [&](int bh) {
        const int b = bh / NH, h = bh % NH;
        for (int t = 0; t < T; t++) {
            const float* a = att + ((size_t)b * NH + h) * T * T + (size_t)t * T;
            float* da = datt + ((size_t)b * NH + h) * T * T + (size_t)t * T;
            float* dpre = dpreatt + ((size_t)b * NH + h) * T * T + (size_t)t * T;
            const float* q = inp + (size_t)b * T * C3 + t * C3 + h * hs;
            float* dq = dinp + (size_t)b * T * C3 + t * C3 + h * hs;
            const float* dout_t = dout + (size_t)b * T * C + t * C + h * hs;
            for (int t2 = 0; t2 <= t; t2++) {
                const float* v = inp + (size_t)b * T * C3 + t2 * C3 + h * hs + 2 * C;
                float* dv = dinp + (size_t)b * T * C3 + t2 * C3 + h * hs + 2 * C;
                float s = 0.0f;
                for (int i = 0; i < hs; i++) {
                    s += v[i] * dout_t[i];
                    dv[i] += a[t2] * dout_t[i];
                }
                da[t2] += s;
            }
            // softmax backward in O(T): dpre = a * (da - sum(a * da))
            float dot = 0.0f;
            for (int t2 = 0; t2 <= t; t2++) dot += a[t2] * da[t2];
            for (int t2 = 0; t2 <= t; t2++) dpre[t2] += a[t2] * (da[t2] - dot);
            for (int t2 = 0; t2 <= t; t2++) {
                const float* k = inp + (size_t)b * T * C3 + t2 * C3 + h * hs + C;
                float* dk = dinp + (size_t)b * T * C3 + t2 * C3 + h * hs + C;
                const float d = dpre[t2] * scale;
                for (int i = 0; i < hs; i++) {
                    dq[i] += k[i] * d;
                    dk[i] += q[i] * d;
                }
            }
        }
    });
}

const float kGeluScale = 0.7978845608028654f;

void fast_gelu_forward(float* out, const float* inp, int N) {
    tbb::parallel_for(tbb::blocked_range<int>(0, N, 4096), [&](const tbb::blocked_range<int>& r) {
        for (int i = r.begin(); i < r.end(); i++) {
            float x = inp[i];
            out[i] = 0.5f * x * (1.0f + tanhf(kGeluScale * (x + 0.044715f * x * x * x)));
        }
    });
}

void fast_gelu_backward(float* dinp, const float* inp, const float* dout, int N) {
    tbb::parallel_for(tbb::blocked_range<int>(0, N, 4096), [&](const tbb::blocked_range<int>& r) {
        for (int i = r.begin(); i < r.end(); i++) {
            float x = inp[i];
            float arg = kGeluScale * (x + 0.044715f * x * x * x);
            float th = tanhf(arg);
            float sech2 = 1.0f - th * th;
            float grad = 0.5f * (1.0f + th) +
                         x * 0.5f * sech2 * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
            dinp[i] += grad * dout[i];
        }
    });
}

void fast_softmax_forward(float* probs, const float* logits, int B, int T, int V) {
    tbb::parallel_for(0, B * T, [&](int bt) {
        const float* l = logits + (size_t)bt * V;
        float* p = probs + (size_t)bt * V;
        float maxval = -10000.0f;
        for (int i = 0; i < V; i++) maxval = l[i] > maxval ? l[i] : maxval;
        float sum = 0.0f;
        for (int i = 0; i < V; i++) {
            p[i] = expf(l[i] - maxval);
            sum += p[i];
        }
        const float inv = 1.0f / sum;
        for (int i = 0; i < V; i++) p[i] *= inv;
    });
}

void fast_crossentropy_softmax_backward(float* dlogits, const float* dlosses, const float* probs,
                                        const int* targets, int B, int T, int V) {
    tbb::parallel_for(0, B * T, [&](int bt) {
        float* dl = dlogits + (size_t)bt * V;
        const float* p = probs + (size_t)bt * V;
        const float d = dlosses[bt];
        for (int i = 0; i < V; i++) dl[i] += p[i] * d;
        dl[targets[bt]] -= d;
    });
}

void fast_adamw_update(float* params, const float* grads, float* m, float* v, size_t n, float lr,
                       float beta1, float beta2, float eps, float weight_decay, int t) {
    const float c1 = 1.0f / (1.0f - powf(beta1, t));
    const float c2 = 1.0f / (1.0f - powf(beta2, t));
    tbb::parallel_for(
        tbb::blocked_range<size_t>(0, n, 16384), [&](const tbb::blocked_range<size_t>& r) {
            for (size_t i = r.begin(); i < r.end(); i++) {
                float g = grads[i];
                float mi = beta1 * m[i] + (1.0f - beta1) * g;
                float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
                m[i] = mi;
                v[i] = vi;
                params[i] -= lr * ((mi * c1) / (sqrtf(vi * c2) + eps) + weight_decay * params[i]);
            }
        });
}

}  // namespace trainopt
