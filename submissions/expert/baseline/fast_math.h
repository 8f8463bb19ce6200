// Vectorized fp32 building blocks for the expert trainer (AVX2 + FMA).
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "contract/rng.h"

namespace trainopt::fast {

// exp(x) for 8 lanes, Cephes polynomial: within 2 ulp of expf over the clamped range.
inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-88.3762626647949f);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, z, x);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    __m256i n = _mm256_cvttps_epi32(fx);
    n = _mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

#ifdef __AVX512F__
// Lanes 0..n-1 (0 <= n, capped at 16).
inline __mmask16 lanes16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

// (lo, hi) as one 16-lane vector, and back
inline __m512 join(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}
inline __m256 upper_half(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

// exp8's range reduction and polynomial on 16 lanes, with 2^n applied by scalef (one
// instruction) and the range checked by one compare: 0 below ln(FLT_MIN), so no denormal ever
// leaves it (they cost microcode assists wherever they are used). 14 instructions: exp is most
// of the softmax and GELU passes.
inline __m512 exp16(__m512 x) {
    const __mmask16 normal = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654475f), _CMP_GE_OQ);
    const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    const __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, z, x);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(normal, y, fx);
}
#endif

inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The widest vector the build machine has, for elementwise passes written once for both:
// 16 lanes with AVX-512, else 8. (The exp polynomials are the same, lane for lane.)
// clang-format off
#ifdef __AVX512F__
using Vec = __m512;
constexpr int kVecLanes = 16;
inline Vec vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec vset(float x) { return _mm512_set1_ps(x); }
inline Vec vadd(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec vsub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec vmul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec vmax(Vec a, Vec b) { return _mm512_max_ps(a, b); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec vexp(Vec x) { return exp16(x); }
inline float vhsum(Vec v) { return _mm512_reduce_add_ps(v); }
inline float vhmax(Vec v) { return _mm512_reduce_max_ps(v); }
// 1/x from the 14-bit estimate and one Newton step (within 2 ulp; a zmm division costs 10-16
// cycles of throughput, half of GELU's time)
inline Vec vrcp(Vec x) {
    const Vec r = _mm512_rcp14_ps(x);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
}
#else
using Vec = __m256;
constexpr int kVecLanes = 8;
inline Vec vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec vset(float x) { return _mm256_set1_ps(x); }
inline Vec vadd(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec vsub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec vmul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec vmax(Vec a, Vec b) { return _mm256_max_ps(a, b); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec vexp(Vec x) { return exp8(x); }
inline float vhsum(Vec v) { return hsum8(v); }
inline float vhmax(Vec v) { return hmax8(v); }
inline Vec vrcp(Vec x) { return _mm256_div_ps(_mm256_set1_ps(1.0f), x); }
#endif
// clang-format on

// r[i] becomes column i of the 8x8 matrix whose rows were r[0..8).
inline void transpose8x8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

// dst(cols, rows) = src(rows, cols)^T: src rows src_stride apart, dst rows dst_stride apart,
// cols a multiple of 8. 8x8 blocks go through registers (the attention heads' keys and values
// are transposed once per head; float by float that would be 40% of the backward's time).
inline void transpose(const float* src, ptrdiff_t src_stride, float* dst, ptrdiff_t dst_stride,
                      int rows, int cols) {
    int r0 = 0;
    for (; r0 + 8 <= rows; r0 += 8) {
        for (int c0 = 0; c0 < cols; c0 += 8) {
            const float* s = src + r0 * src_stride + c0;
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(s + i * src_stride);
            transpose8x8(r);
            float* d = dst + c0 * dst_stride + r0;
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(d + i * dst_stride, r[i]);
        }
    }
    for (; r0 < rows; r0++)
        for (int c = 0; c < cols; c++) dst[c * dst_stride + r0] = src[r0 * src_stride + c];
}

// Lanes 0..n-1 set (0 <= n <= 8).
inline __m256 lane_mask(int n) {
    return _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

// The exponentials of a softmax of row[0..n), in place: row[i] = exp(row[i] - max); row is
// padded to a multiple of 8 and the padding lanes row[n..round_up8(n)) become 0. The caller
// applies the 1/sum (attention scales its output rows: a pass over the row fewer).
// Short rows (causal attention's first rows) stay vectorized: no scalar expf tail. Returns the
// row's max and 1/sum of the exponentials.
inline void softmax_row_unscaled(float* row, int n, float& max_out, float& inv_out) {
    const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
    __m256 m = neg_inf;
    int i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(row + i));
    if (i < n)
        m = _mm256_max_ps(m, _mm256_blendv_ps(neg_inf, _mm256_loadu_ps(row + i), lane_mask(n - i)));
    const float mx = hmax8(m);
    const __m256 shift = _mm256_set1_ps(mx);
    __m256 sum = _mm256_setzero_ps();
    for (i = 0; i < n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + i), shift));
        if (i + 8 > n) e = _mm256_and_ps(e, lane_mask(n - i));
        _mm256_storeu_ps(row + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    max_out = mx;
    inv_out = 1.0f / hsum8(sum);
}

// Attention backward for one query row, recomputing its exponentials exactly as
// softmax_row_unscaled did: att = exp(att - max) * inv, then dpre = att * (dpre - rowdot) *
// scale, over [0, n);
// both rows padded to a multiple of 8, padding lanes set to 0.
inline void softmax_row_backward(float* att, float* dpre, int n, float max, float inv, float rowdot,
                                 float scale) {
    const __m256 shift = _mm256_set1_ps(max), vinv = _mm256_set1_ps(inv);
    const __m256 vdot = _mm256_set1_ps(rowdot), vscale = _mm256_set1_ps(scale);
    for (int i = 0; i < n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(att + i), shift));
        if (i + 8 > n) e = _mm256_and_ps(e, lane_mask(n - i));
        const __m256 a = _mm256_mul_ps(e, vinv);
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(dpre + i), vdot);
        _mm256_storeu_ps(att + i, a);
        _mm256_storeu_ps(dpre + i, _mm256_mul_ps(_mm256_mul_ps(a, d), vscale));
    }
}

// out[i] = exp(in[i] - shift); returns the sum of out[0..n)
float exp_shift_sum(float* out, const float* in, int n, float shift);
float max_of(const float* x, int n);

// GELU (tanh form) over n values. The forward also computes the derivative, which shares the
// exponential with the value, and stores it over the input (the pre-activation is needed only
// for it); the backward is then dinp[i] = grad[i] * dout[i] (dinp may alias dout). One exp per
// element serves both.
void gelu_forward(float* out, float* inp_then_grad, int n);
void gelu_backward(float* dinp, const float* grad, const float* dout, int n);

// out[i] = scale * (float)(0.02 * rng.next_normal()) for i in [0, n): gpt_init_params' draws,
// with the double-precision log and cos from glibc's libmvec, four lanes at a time (scalar libm
// calls would take 20-30 ms of a 0.5 s run). libmvec is within 4 ulp of libm in double, so after
// rounding to float the weights are the reference's (measured: 21.7M floats over 5 shapes and
// 12 seeds, none differ; docs/performance.md).
void init_normals(Rng& rng, float* out, int n, float scale);

}  // namespace trainopt::fast
