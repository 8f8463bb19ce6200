#include "fast_math.h"

#include <cmath>

// glibc's vector math library (libmvec), AVX2 variants: declared by hand since only the
// compiler's auto-vectorizer is meant to call them, but their ABI is fixed (GLIBC_2.22).
extern "C" __m256d _ZGVdN4v_log(__m256d x);
extern "C" __m256d _ZGVdN4v_cos(__m256d x);

namespace trainopt::fast {

void init_normals(Rng& rng, float* out, int n, float scale) {
    const __m256d tiny = _mm256_set1_pd(1e-300), two_pi = _mm256_set1_pd(6.283185307179586);
    const __m256d minus_two = _mm256_set1_pd(-2.0), std_dev = _mm256_set1_pd(0.02);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        alignas(32) double u1[4], u2[4];
        for (int k = 0; k < 4; k++) {  // draw order as in Rng::next_normal
            u1[k] = rng.next_double();
            u2[k] = rng.next_double();
        }
        const __m256d radius = _mm256_sqrt_pd(
            _mm256_mul_pd(minus_two, _ZGVdN4v_log(_mm256_max_pd(_mm256_load_pd(u1), tiny))));
        const __m256d angle = _ZGVdN4v_cos(_mm256_mul_pd(two_pi, _mm256_load_pd(u2)));
        const __m128 w = _mm256_cvtpd_ps(_mm256_mul_pd(std_dev, _mm256_mul_pd(radius, angle)));
        _mm_storeu_ps(out + i, _mm_mul_ps(w, _mm_set1_ps(scale)));
    }
    for (; i < n; i++) out[i] = static_cast<float>(0.02 * rng.next_normal()) * scale;
}

float exp_shift_sum(float* out, const float* in, int n, float shift) {
    const Vec s = vset(shift);
    Vec acc = vset(0.0f);
    int i = 0;
    for (; i + kVecLanes <= n; i += kVecLanes) {
        const Vec e = vexp(vsub(vload(in + i), s));
        vstore(out + i, e);
        acc = vadd(acc, e);
    }
    float sum = vhsum(acc);
    for (; i < n; i++) {
        out[i] = expf(in[i] - shift);
        sum += out[i];
    }
    return sum;
}

float max_of(const float* x, int n) {
    Vec m = vset(-INFINITY);
    int i = 0;
    for (; i + kVecLanes <= n; i += kVecLanes) m = vmax(m, vload(x + i));
    float r = vhmax(m);
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

namespace {
const float kScale = 0.7978845608028654f;  // sqrt(2/pi)

// 0.5 * (1 + tanh(u)) = e / (e + 1) with e = exp(2u): no cancellation where tanh(u) -> -1,
// so this is at least as accurate as the reference's 1 + tanhf(u).
inline Vec half_one_plus_tanh(Vec u) {
    const Vec e = vexp(vadd(u, u));
    return vmul(e, vrcp(vadd(e, vset(1.0f))));
}
}  // namespace

void gelu_forward(float* out, float* inp_then_grad, int n) {
    const Vec one = vset(1.0f), four = vset(4.0f);
    const Vec k = vset(kScale), c = vset(0.044715f);
    const Vec half_k = vset(0.5f * kScale), c3 = vset(3.0f * 0.044715f);
    float* io = inp_then_grad;
    int i = 0;
    for (; i + kVecLanes <= n; i += kVecLanes) {
        const Vec x = vload(io + i);
        const Vec x2 = vmul(x, x);
        const Vec s = half_one_plus_tanh(vmul(k, vfma(c, vmul(x2, x), x)));
        // sech^2(u) = 1 - tanh^2(u) = 4 s (1 - s), with s = 0.5 (1 + tanh(u))
        const Vec sech2 = vmul(four, vmul(s, vsub(one, s)));
        // gelu' = s + 0.5 x sech2 k (1 + 3 c x^2)
        const Vec grad = vfma(vmul(vmul(x, half_k), sech2), vfma(c3, x2, one), s);
        vstore(out + i, vmul(x, s));
        vstore(io + i, grad);
    }
    for (; i < n; i++) {
        const float x = io[i];
        const float th = tanhf(kScale * (x + 0.044715f * x * x * x));
        const float sech2 = 1.0f - th * th;
        out[i] = 0.5f * x * (1.0f + th);
        io[i] = 0.5f * (1.0f + th) + x * 0.5f * sech2 * kScale * (1.0f + 3.0f * 0.044715f * x * x);
    }
}

void gelu_backward(float* dinp, const float* grad, const float* dout, int n) {
    int i = 0;
    for (; i + kVecLanes <= n; i += kVecLanes)
        vstore(dinp + i, vmul(vload(grad + i), vload(dout + i)));
    for (; i < n; i++) dinp[i] = grad[i] * dout[i];
}

}  // namespace trainopt::fast
