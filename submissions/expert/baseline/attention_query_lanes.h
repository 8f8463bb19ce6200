// Attention heads of 8 channels (16 too, on AVX-512) with one query per vector lane. A row of
// q, k or v is a single vector there, too narrow for fast::gemm_small tiles (call and tail
// overhead would dominate), so the queries of a block share each vector: a key's scores for all
// of them are HS FMAs against the block's transposed queries, the softmax's max and sum are
// lane-wise (no horizontal reductions), and the output accumulates transposed. Lanes past T are
// zero queries whose results are never stored. As on the tiled path (attention.cpp), the (T,T)
// matrix is never stored: the forward keeps each query's max and 1/sum, and the backward
// recomputes the probabilities from them.
//
// Included by attention.cpp only: query_lanes8 on AVX2 machines, query_lanes16 on AVX-512 ones.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "fast_math.h"
#include "small_gemm.h"

namespace trainopt {

#ifndef __AVX512F__
// 8 queries per vector, heads of exactly 8 channels.
namespace query_lanes8 {

// col[c], lane l = x[(i0 + l) * stride + c] for the n <= 8 rows of a block; missing rows zero.
inline void load_block(const float* x, ptrdiff_t stride, int n, __m256 col[8]) {
    for (int l = 0; l < 8; l++)
        col[l] = l < n ? _mm256_loadu_ps(x + l * stride) : _mm256_setzero_ps();
    fast::transpose8x8(col);
}

inline void store_block(float* x, ptrdiff_t stride, int n, __m256 col[8]) {
    fast::transpose8x8(col);
    for (int l = 0; l < n; l++) _mm256_storeu_ps(x + l * stride, col[l]);
}

// sum_c row[c] * cols[c]: one row of 8 channels against the block's 8 transposed rows
inline __m256 row_dot(const float* row, const __m256 cols[8]) {
    __m256 a = _mm256_mul_ps(_mm256_broadcast_ss(row), cols[0]);
    __m256 b = _mm256_mul_ps(_mm256_broadcast_ss(row + 1), cols[1]);
    for (int c = 2; c < 8; c += 2) {
        a = _mm256_fmadd_ps(_mm256_broadcast_ss(row + c), cols[c], a);
        b = _mm256_fmadd_ps(_mm256_broadcast_ss(row + c + 1), cols[c + 1], b);
    }
    return _mm256_add_ps(a, b);
}

// Lanes whose query (i0 + lane) may see key j.
inline __m256 causal_mask(int i0, int j) {
    const __m256i query =
        _mm256_add_epi32(_mm256_set1_epi32(i0 + 1), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(query, _mm256_set1_epi32(j)));
}

// One head: out (stride C), per-query max and 1/sum; scores is (T, 8) scratch.
inline void forward(float* out, ptrdiff_t C, float* row_max, float* row_inv, const float* q,
                    const float* k, const float* v, ptrdiff_t C3, int T, float* scores) {
    const __m256 scale = _mm256_set1_ps(1.0f / sqrtf(8.0f));
    const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
    for (int i0 = 0; i0 < T; i0 += 8) {
        const int n = std::min(8, T - i0), keys = i0 + n;
        __m256 qt[8];
        load_block(q + (size_t)i0 * C3, C3, n, qt);
        __m256 mx = neg_inf;
        for (int j = 0; j < keys; j++) {
            __m256 s = _mm256_mul_ps(row_dot(k + (size_t)j * C3, qt), scale);
            if (j >= i0) s = _mm256_blendv_ps(neg_inf, s, causal_mask(i0, j));
            _mm256_storeu_ps(scores + 8 * j, s);
            mx = _mm256_max_ps(mx, s);
        }
        // exponentials first, then the products: each loop's iterations are short and
        // independent, so several are in flight (one loop doing both would be latency-bound)
        __m256 sum = _mm256_setzero_ps(), ot[8];
        for (int j = 0; j < keys; j++) {
            __m256 e = fast::exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + 8 * j), mx));
            if (j >= i0) e = _mm256_and_ps(e, causal_mask(i0, j));
            _mm256_storeu_ps(scores + 8 * j, e);
            sum = _mm256_add_ps(sum, e);
        }
        for (int c = 0; c < 8; c++) ot[c] = _mm256_setzero_ps();
        for (int j = 0; j < keys; j++) {
            const __m256 e = _mm256_loadu_ps(scores + 8 * j);
            const float* vj = v + (size_t)j * C3;
            for (int c = 0; c < 8; c++)
                ot[c] = _mm256_fmadd_ps(_mm256_broadcast_ss(vj + c), e, ot[c]);
        }
        const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
        for (int c = 0; c < 8; c++) ot[c] = _mm256_mul_ps(ot[c], inv);
        store_block(out + (size_t)i0 * C, C, n, ot);
        const __m256i stored = _mm256_castps_si256(fast::lane_mask(n));
        _mm256_maskstore_ps(row_max + i0, stored, mx);
        _mm256_maskstore_ps(row_inv + i0, stored, inv);
    }
}

// One head's dq, dk, dv (stride C3, all overwritten), recomputing the probabilities from the
// stored max and 1/sum; dK and dV rows gather the 8 queries' lanes one at a time.
inline void backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                     ptrdiff_t C, const float* q, const float* k, const float* v, ptrdiff_t C3,
                     const float* row_max, const float* row_inv, int T, float* probs,
                     float* dscores) {
    const __m256 scale = _mm256_set1_ps(1.0f / sqrtf(8.0f));
    for (int j = 0; j < T; j++) {
        _mm256_storeu_ps(dk + (size_t)j * C3, _mm256_setzero_ps());
        _mm256_storeu_ps(dv + (size_t)j * C3, _mm256_setzero_ps());
    }
    for (int i0 = 0; i0 < T; i0 += 8) {
        const int n = std::min(8, T - i0), keys = i0 + n;
        const float* qb = q + (size_t)i0 * C3;
        const float* db = dout + (size_t)i0 * C;
        __m256 qt[8], dot[8], ot[8], dqt[8];
        load_block(qb, C3, n, qt);
        load_block(db, C, n, dot);
        load_block(out + (size_t)i0 * C, C, n, ot);
        __m256 rowdot = _mm256_mul_ps(dot[0], ot[0]);  // sum over keys of att * datt
        for (int c = 1; c < 8; c++) rowdot = _mm256_fmadd_ps(dot[c], ot[c], rowdot);
        const __m256i valid = _mm256_castps_si256(fast::lane_mask(n));
        const __m256 mx = _mm256_maskload_ps(row_max + i0, valid);
        const __m256 inv = _mm256_maskload_ps(row_inv + i0, valid);  // 0 past T: p = 0 there
        // three loops with short independent iterations (one loop doing everything per key
        // would be latency-bound): probabilities and their gradients, then dq, then dk and dv
        for (int j = 0; j < keys; j++) {
            const __m256 s = _mm256_mul_ps(row_dot(k + (size_t)j * C3, qt), scale);
            __m256 p = _mm256_mul_ps(fast::exp8(_mm256_sub_ps(s, mx)), inv);
            if (j >= i0) p = _mm256_and_ps(p, causal_mask(i0, j));
            const __m256 dp = row_dot(v + (size_t)j * C3, dot);
            _mm256_storeu_ps(probs + 8 * j, p);
            _mm256_storeu_ps(dscores + 8 * j,
                             _mm256_mul_ps(_mm256_mul_ps(p, _mm256_sub_ps(dp, rowdot)), scale));
        }
        for (int c = 0; c < 8; c++) dqt[c] = _mm256_setzero_ps();
        for (int j = 0; j < keys; j++) {
            const float* kj = k + (size_t)j * C3;
            const __m256 ds = _mm256_loadu_ps(dscores + 8 * j);
            for (int c = 0; c < 8; c++)
                dqt[c] = _mm256_fmadd_ps(_mm256_broadcast_ss(kj + c), ds, dqt[c]);
        }
        for (int j = 0; j < keys; j++) {
            float* dkj = dk + (size_t)j * C3;
            float* dvj = dv + (size_t)j * C3;
            __m256 dk0 = _mm256_loadu_ps(dkj), dv0 = _mm256_loadu_ps(dvj);
            __m256 dk1 = _mm256_setzero_ps(), dv1 = _mm256_setzero_ps();
            const float* ds = dscores + 8 * j;
            const float* p = probs + 8 * j;
            int l = 0;
            for (; l + 2 <= n; l += 2) {
                dk0 =
                    _mm256_fmadd_ps(_mm256_broadcast_ss(ds + l), _mm256_loadu_ps(qb + l * C3), dk0);
                dk1 = _mm256_fmadd_ps(_mm256_broadcast_ss(ds + l + 1),
                                      _mm256_loadu_ps(qb + (l + 1) * C3), dk1);
                dv0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + l), _mm256_loadu_ps(db + l * C), dv0);
                dv1 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + l + 1),
                                      _mm256_loadu_ps(db + (l + 1) * C), dv1);
            }
            if (l < n) {
                dk0 =
                    _mm256_fmadd_ps(_mm256_broadcast_ss(ds + l), _mm256_loadu_ps(qb + l * C3), dk0);
                dv0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + l), _mm256_loadu_ps(db + l * C), dv0);
            }
            _mm256_storeu_ps(dkj, _mm256_add_ps(dk0, dk1));
            _mm256_storeu_ps(dvj, _mm256_add_ps(dv0, dv1));
        }
        store_block(dq + (size_t)i0 * C3, C3, n, dqt);
    }
}

}  // namespace query_lanes8
#else
// 16 queries per vector, heads of 8 or 16 channels (HS): T = 32 is two blocks, and for 16-channel
// heads (the long-context task) every product keeps HS independent accumulators busy, where a
// tile's output product would have a single 16-lane column vector and 6 rows per query tile
// (6 accumulators, latency-bound).
namespace query_lanes16 {

// col[c], lane l = x[l * stride + c] for c < HS and the n <= 16 rows of a block (missing rows
// zero), through 8x8 transposes of each half.
template <int HS>
inline void load_block(const float* x, ptrdiff_t stride, int n, __m512 col[HS]) {
    for (int g = 0; g < HS; g += 8) {
        __m256 half[2][8];
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 8; l++) {
                const int row = 8 * h + l;
                half[h][l] = row < n ? _mm256_loadu_ps(x + row * stride + g) : _mm256_setzero_ps();
            }
            fast::transpose8x8(half[h]);
        }
        for (int c = 0; c < 8; c++) col[g + c] = fast::join(half[0][c], half[1][c]);
    }
}

template <int HS>
inline void store_block(float* x, ptrdiff_t stride, int n, const __m512 col[HS]) {
    for (int g = 0; g < HS; g += 8) {
        __m256 half[2][8];
        for (int c = 0; c < 8; c++) {
            half[0][c] = _mm512_castps512_ps256(col[g + c]);
            half[1][c] = fast::upper_half(col[g + c]);
        }
        for (int h = 0; h < 2; h++) {
            fast::transpose8x8(half[h]);
            for (int l = 0; l < 8 && 8 * h + l < n; l++)
                _mm256_storeu_ps(x + (8 * h + l) * stride + g, half[h][l]);
        }
    }
}

// sum_c row[c] * cols[c], in two chains (for HS = 8 the same sums as query_lanes8::row_dot)
template <int HS>
inline __m512 row_dot(const float* row, const __m512 cols[HS]) {
    __m512 a = _mm512_mul_ps(_mm512_set1_ps(row[0]), cols[0]);
    __m512 b = _mm512_mul_ps(_mm512_set1_ps(row[1]), cols[1]);
    for (int c = 2; c < HS; c += 2) {
        a = _mm512_fmadd_ps(_mm512_set1_ps(row[c]), cols[c], a);
        b = _mm512_fmadd_ps(_mm512_set1_ps(row[c + 1]), cols[c + 1], b);
    }
    return _mm512_add_ps(a, b);
}

// Lanes whose query (i0 + lane) may see key j, for j > i0.
inline __mmask16 causal_mask(int i0, int j) {
    return (__mmask16)(0xFFFFu << (j - i0));
}

// One head: out (stride C), per-query max and 1/sum; scores is (T, 16) scratch.
template <int HS>
void forward(float* out, ptrdiff_t C, float* row_max, float* row_inv, const float* q,
             const float* k, const float* v, ptrdiff_t C3, int T, float* scores) {
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf((float)HS));
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
    for (int i0 = 0; i0 < T; i0 += 16) {
        const int n = std::min(16, T - i0), keys = i0 + n;
        __m512 qt[HS];
        load_block<HS>(q + (size_t)i0 * C3, C3, n, qt);
        __m512 mx = neg_inf;
        for (int j = 0; j < keys; j++) {
            __m512 s = _mm512_mul_ps(row_dot<HS>(k + (size_t)j * C3, qt), scale);
            if (j > i0) s = _mm512_mask_blend_ps(causal_mask(i0, j), neg_inf, s);
            _mm512_storeu_ps(scores + 16 * j, s);
            mx = _mm512_max_ps(mx, s);
        }
        __m512 sum = _mm512_setzero_ps(), ot[HS];
        for (int j = 0; j < keys; j++) {
            __m512 e = fast::exp16(_mm512_sub_ps(_mm512_loadu_ps(scores + 16 * j), mx));
            if (j > i0) e = _mm512_maskz_mov_ps(causal_mask(i0, j), e);
            _mm512_storeu_ps(scores + 16 * j, e);
            sum = _mm512_add_ps(sum, e);
        }
        for (int c = 0; c < HS; c++) ot[c] = _mm512_setzero_ps();
        for (int j = 0; j < keys; j++) {
            const __m512 e = _mm512_loadu_ps(scores + 16 * j);
            const float* vj = v + (size_t)j * C3;
            for (int c = 0; c < HS; c++) ot[c] = _mm512_fmadd_ps(_mm512_set1_ps(vj[c]), e, ot[c]);
        }
        const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
        for (int c = 0; c < HS; c++) ot[c] = _mm512_mul_ps(ot[c], inv);
        store_block<HS>(out + (size_t)i0 * C, C, n, ot);
        _mm512_mask_storeu_ps(row_max + i0, fast::lanes16(n), mx);
        _mm512_mask_storeu_ps(row_inv + i0, fast::lanes16(n), inv);
    }
}

// One head's dq, dk, dv (stride C3, all overwritten), recomputing the probabilities from the
// stored max and 1/sum; dK and dV take each block's share as products (keys x 16 queries) x
// (16 queries x HS channels).
template <int HS>
void backward(float* dq, float* dk, float* dv, const float* dout, const float* out, ptrdiff_t C,
              const float* q, const float* k, const float* v, ptrdiff_t C3, const float* row_max,
              const float* row_inv, int T, float* probs, float* dscores) {
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf((float)HS));
    const __mmask16 channels = fast::lanes16(HS);
    for (int j = 0; j < T; j++) {
        _mm512_mask_storeu_ps(dk + (size_t)j * C3, channels, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(dv + (size_t)j * C3, channels, _mm512_setzero_ps());
    }
    for (int i0 = 0; i0 < T; i0 += 16) {
        const int n = std::min(16, T - i0), keys = i0 + n;
        const float* qb = q + (size_t)i0 * C3;
        const float* db = dout + (size_t)i0 * C;
        __m512 qt[HS], dot[HS], ot[HS], dqt[HS];
        load_block<HS>(qb, C3, n, qt);
        load_block<HS>(db, C, n, dot);
        load_block<HS>(out + (size_t)i0 * C, C, n, ot);
        __m512 rowdot = _mm512_mul_ps(dot[0], ot[0]);  // sum over keys of att * datt
        for (int c = 1; c < HS; c++) rowdot = _mm512_fmadd_ps(dot[c], ot[c], rowdot);
        const __m512 mx = _mm512_maskz_loadu_ps(fast::lanes16(n), row_max + i0);
        const __m512 inv = _mm512_maskz_loadu_ps(fast::lanes16(n), row_inv + i0);  // 0 past T
        // probabilities and their gradients, then dq, then dk and dv (as in query_lanes8)
        for (int j = 0; j < keys; j++) {
            const __m512 s = _mm512_mul_ps(row_dot<HS>(k + (size_t)j * C3, qt), scale);
            __m512 p = _mm512_mul_ps(fast::exp16(_mm512_sub_ps(s, mx)), inv);
            if (j > i0) p = _mm512_maskz_mov_ps(causal_mask(i0, j), p);
            const __m512 dp = row_dot<HS>(v + (size_t)j * C3, dot);
            _mm512_storeu_ps(probs + 16 * j, p);
            _mm512_storeu_ps(dscores + 16 * j,
                             _mm512_mul_ps(_mm512_mul_ps(p, _mm512_sub_ps(dp, rowdot)), scale));
        }
        for (int c = 0; c < HS; c++) dqt[c] = _mm512_setzero_ps();
        for (int j = 0; j < keys; j++) {
            const float* kj = k + (size_t)j * C3;
            const __m512 ds = _mm512_loadu_ps(dscores + 16 * j);
            for (int c = 0; c < HS; c++)
                dqt[c] = _mm512_fmadd_ps(_mm512_set1_ps(kj[c]), ds, dqt[c]);
        }
        // dk(keys, HS) += dscores(keys, n) q_block(n, HS), dv likewise with probs and dout
        fast::gemm_small(keys, HS, n, dscores, 16, 1, qb, C3, dk, C3, 1.0f, true);
        fast::gemm_small(keys, HS, n, probs, 16, 1, db, C, dv, C3, 1.0f, true);
        store_block<HS>(dq + (size_t)i0 * C3, C3, n, dqt);
    }
}

}  // namespace query_lanes16
#endif

}  // namespace trainopt
