// trainopt-train, expert edition: the same training as the reference trainer, restructured for
// speed. Same init (gpt_init_params), same batches (the seed's data stream), same math; only
// the order of floating-point operations differs.
//
// What changed, and why (measurements in docs/performance.md):
// - data parallelism: the batch is split into one replica per thread; each replica runs the
//   whole forward and backward on its rows single-threaded, and the replicas' gradients are
//   summed in a fixed order inside the AdamW pass. Each step is one job on a spinning
//   fork-join pool (spin_pool.h), since waking sleeping threads costs tens of microseconds;
//   a thread whose replica is done updates the layers every replica is past (UpdateUnit);
// - products of narrow layers (d_model <= 128 on AVX2, <= 256 on AVX-512), of attention heads
//   and of a wide-vocabulary LM head run on register-blocked tiles (small_gemm.h: AVX-512
//   where the build machine has it, else AVX2), the weights read as stored (out, in) and
//   transposed panel by panel while packed; larger ones on OpenBLAS, opened on first use and
//   single-threaded (lazy_blas.h); with a single replica (batch 1, or one thread) those are
//   split into row tiles across oneTBB's threads instead;
// - attention is flash-style: causal query tiles against the keys they can see, the (T,T)
//   matrix never stored, probabilities recomputed in the backward, softmax backward O(T);
//   heads of 8 channels (16 too, on AVX-512) put one query per vector lane instead
//   (namespaces hs8, q16);
// - the wide-vocabulary LM head runs in vocabulary chunks with an online softmax;
// - bias and residual adds are folded into the products' C operand;
// - softmax, cross-entropy and its backward are one pass per row, writing dlogits in place;
// - backward kernels overwrite their outputs (parameter gradients too), so nothing is cleared
//   each step but the position-embedding gradient;
// - GELU and exp use polynomial approximations within 2 ulp of libm; the GELU forward also
//   stores the derivative, so the backward is a multiply;
// - large buffers sit on transparent huge pages (huge_buffer.h).
#include <tbb/enumerable_thread_specific.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "fast_math.h"
#include "huge_buffer.h"
#include "kernels/gpt.h"
#include "kernels/rng.h"
#include "kernels/trainer_outputs.h"
#include "lazy_blas.h"
#include "small_gemm.h"
#include "spin_pool.h"
#include "tasks/data.h"
#include "tasks/task_spec.h"

using namespace trainopt;

namespace {

// ----------------------------------------------------------------------------------------------
// parallel loops that stay serial when the work is too small to pay for waking threads

constexpr double kParallelWork = 1 << 16;  // elementwise work below this runs on one thread

template <typename Body>
void parallel_range(bool par, int n, double work, int grain, const Body& body) {
    if (!par || work < kParallelWork) {
        body(0, n);
        return;
    }
    tbb::parallel_for(tbb::blocked_range<int>(0, n, grain),
                      [&](const tbb::blocked_range<int>& r) { body(r.begin(), r.end()); });
}

// ----------------------------------------------------------------------------------------------
// matmul helpers

// C(M,N) = op(A) op(B) + beta * C, row-major. Large products are split into one tile per
// thread along the longer side of C (so each thread packs only its share of the operands).
// transA: A is stored (K,M); transB: B is stored (N,K).
void gemm(bool par, bool transA, bool transB, int M, int N, int K, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
    const CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = transB ? CblasTrans : CblasNoTrans;
    const int threads = tbb::this_task_arena::max_concurrency();
    const double work = 2.0 * M * N * K;
    if (!par || threads == 1 || work < 1.5e6) {
        blas::sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const bool split_rows = M >= N;
    const int extent = split_rows ? M : N;
    const int step = ((extent + threads - 1) / threads + 7) / 8 * 8;
    tbb::parallel_for(
        0, threads,
        [&](int tile) {
            const int i0 = tile * step, i1 = std::min(extent, i0 + step);
            if (i0 >= i1) return;
            if (split_rows) {
                const float* a = transA ? A + i0 : A + (size_t)i0 * lda;
                blas::sgemm(CblasRowMajor, ta, tb, i1 - i0, N, K, 1.0f, a, lda, B, ldb, beta,
                            C + (size_t)i0 * ldc, ldc);
            } else {
                const float* b = transB ? B + (size_t)i0 * ldb : B + i0;
                blas::sgemm(CblasRowMajor, ta, tb, M, i1 - i0, K, 1.0f, A, lda, b, ldb, beta,
                            C + i0, ldc);
            }
        },
        tbb::static_partitioner());
}

// out(BT,OC) = base(BT,OC) + bias(OC) + inp(BT,C) @ w(OC,C)^T; base may be null, bias too.
// small: run the product on fast::gemm_small tiles instead of sgemm (C a multiple of 8).
void linear_forward(bool par, bool small, float* out, const float* inp, const float* w,
                    const float* bias, const float* base, int BT, int C, int OC) {
    if (base != nullptr || bias != nullptr) {
        parallel_range(par, BT, (double)BT * OC, 64, [&](int r0, int r1) {
            for (int i = r0; i < r1; i++) {
                float* o = out + (size_t)i * OC;
                const float* b = base != nullptr ? base + (size_t)i * OC : nullptr;
#pragma omp simd
                for (int j = 0; j < OC; j++) o[j] = (b ? b[j] : 0.0f) + (bias ? bias[j] : 0.0f);
            }
        });
    }
    if (small)
        fast::gemm_small_bt(BT, OC, C, inp, C, 1, w, C, out, OC, 1.0f, base || bias);
    else
        gemm(par, false, true, BT, OC, C, inp, C, w, C, (base || bias) ? 1.0f : 0.0f, out, OC);
}

// dinp(BT,C) = dout @ w; dw(OC,C) = dout^T @ inp; dbias(OC) = colsum(dout) (all overwritten).
// small: run the products on fast::gemm_small tiles (C must be a multiple of 8).
void linear_backward(bool par, bool small, float* dinp, float* dw, float* dbias, const float* dout,
                     const float* inp, const float* w, int BT, int C, int OC) {
    if (small) {
        fast::gemm_small(BT, C, OC, dout, OC, 1, w, C, dinp, C, 1.0f, false);
        fast::gemm_small(OC, C, BT, dout, 1, OC, inp, C, dw, C, 1.0f, false);
    } else {
        gemm(par, false, false, BT, C, OC, dout, OC, w, C, 0.0f, dinp, C);
        gemm(par, true, false, OC, C, BT, dout, OC, inp, C, 0.0f, dw, C);
    }
    if (dbias != nullptr) {
        std::copy(dout, dout + OC, dbias);
        for (int i = 1; i < BT; i++) {
            const float* d = dout + (size_t)i * OC;
#pragma omp simd
            for (int j = 0; j < OC; j++) dbias[j] += d[j];
        }
    }
}

// ----------------------------------------------------------------------------------------------
// layernorm

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

// dinp = add + layernorm'(dout) (add may be null); dinp, dw, db are overwritten.
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

// ----------------------------------------------------------------------------------------------
// attention: per (b, h), scores = q k^T (T,T), causal softmax, out = att v.

struct AttentionScratch {
    std::vector<float> scores;     // (T,T) BLAS path
    std::vector<float> att, dpre;  // (kQueryBlock,Tp) one block of probabilities and their grads
    std::vector<float> kt, vt;     // (hs,Tp) one head's keys and values transposed, zero-padded
    std::vector<float> rowdot;     // (T) <dout, out> per query
};

// One head's slices: q, k and v are rows of stride 3C inside the (B,T,3C) qkv tensor (dq, dk,
// dv likewise inside dqkv); a head's part of a (B,T,C) tensor starts at head_offset.
struct HeadQKV {
    const float *q, *k, *v;
};
struct HeadDQKV {
    float *dq, *dk, *dv;
};

size_t head_qkv_offset(int b, int h, int T, int C, int hs) {
    return (size_t)b * T * 3 * C + (size_t)h * hs;
}
size_t head_offset(int b, int h, int T, int C, int hs) {
    return (size_t)b * T * C + (size_t)h * hs;
}
HeadQKV head_qkv(const float* qkv, int b, int h, int T, int C, int hs) {
    const float* q = qkv + head_qkv_offset(b, h, T, C, hs);
    return {q, q + C, q + 2 * C};
}
HeadDQKV head_dqkv(float* dqkv, int b, int h, int T, int C, int hs) {
    float* dq = dqkv + head_qkv_offset(b, h, T, C, hs);
    return {dq, dq + C, dq + 2 * C};
}

// Heads of a multiple of 8 channels take the tiled (flash-style) path, others the sgemm one.
bool small_heads(int C, int NH) {
    return (C / NH) % 8 == 0;
}

// Row stride of the flash path's scratch matrices (att, dpre, kt, vt): T rounded up to 8, plus
// 16 floats so that rows are never a power-of-two multiple of 512 bytes apart. At T = 512 a
// stride of 2 KB maps all 16 rows of a key panel into 2 of L1's 64 sets (8 ways each).
int scratch_stride(int T) {
    return fast::round_up8(T) + 16;
}

// The causal mask makes the upper triangle of every (T,T) product zero, so the sgemms run on
// row blocks of kAttentionBlock queries against only the keys they can see: for T = 512 that
// is 56% of the full products' work.
constexpr int kAttentionBlock = 64;

void attention_forward_blas(bool par, float* out, float* att, const float* qkv, int B, int T, int C,
                            int NH, tbb::enumerable_thread_specific<AttentionScratch>& scratch) {
    const int C3 = 3 * C, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    parallel_range(par, B * NH, (double)B * NH * T * T * hs, 1, [&](int bh0, int bh1) {
        for (int bh = bh0; bh < bh1; bh++) {
            const int b = bh / NH, h = bh % NH;
            const auto [q, k, v] = head_qkv(qkv, b, h, T, C, hs);
            float* a = att + (size_t)bh * T * T;
            float* scores = scratch.local().scores.data();
            for (int r0 = 0; r0 < T; r0 += kAttentionBlock) {
                const int r1 = std::min(T, r0 + kAttentionBlock);
                blas::sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hs, scale,
                            q + (size_t)r0 * C3, C3, k, C3, 0.0f, scores + (size_t)r0 * T, T);
                for (int t = r0; t < r1; t++) {
                    const float* sr = scores + (size_t)t * T;
                    float* row = a + (size_t)t * T;
                    const float maxval = fast::max_of(sr, t + 1);
                    const float inv = 1.0f / fast::exp_shift_sum(row, sr, t + 1, maxval);
#pragma omp simd
                    for (int t2 = 0; t2 <= t; t2++) row[t2] *= inv;
                    std::fill(row + t + 1, row + T, 0.0f);
                }
                blas::sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hs, r1, 1.0f,
                            a + (size_t)r0 * T, T, v, C3, 0.0f,
                            out + head_offset(b, h, T, C, hs) + (size_t)r0 * C, C);
            }
        }
    });
}

// dqkv is overwritten.
void attention_backward_blas(bool par, float* dqkv, const float* dout, const float* qkv,
                             const float* att, int B, int T, int C, int NH,
                             tbb::enumerable_thread_specific<AttentionScratch>& scratch) {
    const int C3 = 3 * C, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    parallel_range(par, B * NH, (double)B * NH * T * T * hs, 1, [&](int bh0, int bh1) {
        for (int bh = bh0; bh < bh1; bh++) {
            const int b = bh / NH, h = bh % NH;
            const auto [q, k, v] = head_qkv(qkv, b, h, T, C, hs);
            const auto [dq, dk, dv] = head_dqkv(dqkv, b, h, T, C, hs);
            const float* a = att + (size_t)bh * T * T;
            const float* d = dout + head_offset(b, h, T, C, hs);
            float* dpre = scratch.local().scores.data();
            // per query block: datt = dout v^T over visible keys, then the O(T) softmax backward
            // dpre = att * (datt - <att, datt>) * scale, then dq = dpre k
            for (int r0 = 0; r0 < T; r0 += kAttentionBlock) {
                const int r1 = std::min(T, r0 + kAttentionBlock);
                blas::sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, r1, hs, 1.0f,
                            d + (size_t)r0 * C, C, v, C3, 0.0f, dpre + (size_t)r0 * T, T);
                for (int t = r0; t < r1; t++) {
                    const float* ar = a + (size_t)t * T;
                    float* dr = dpre + (size_t)t * T;
                    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                    for (int t2 = 0; t2 <= t; t2++) dot += ar[t2] * dr[t2];
#pragma omp simd
                    for (int t2 = 0; t2 <= t; t2++) dr[t2] = ar[t2] * (dr[t2] - dot) * scale;
                    std::fill(dr + t + 1, dr + T, 0.0f);
                }
                blas::sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, hs, r1, 1.0f,
                            dpre + (size_t)r0 * T, T, k, C3, 0.0f, dq + (size_t)r0 * C3, C3);
            }
            // per key block: only queries at or after the block see it
            // dv = att^T dout, dk = dpre^T q
            for (int c0 = 0; c0 < T; c0 += kAttentionBlock) {
                const int c1 = std::min(T, c0 + kAttentionBlock);
                blas::sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, hs, T - c0, 1.0f,
                            a + (size_t)c0 * T + c0, T, d + (size_t)c0 * C, C, 0.0f,
                            dv + (size_t)c0 * C3, C3);
                blas::sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c1 - c0, hs, T - c0, 1.0f,
                            dpre + (size_t)c0 * T + c0, T, q + (size_t)c0 * C3, C3, 0.0f,
                            dk + (size_t)c0 * C3, C3);
            }
        }
    });
}

// Heads of 8, 16, 24... channels, flash-attention style. The products are too small for sgemm
// calls to pay off (a head of the small task is a 32x32x8 product), so they run on
// fast::gemm_small tiles of kQueryTile queries, each against only the keys it can see. The
// (T,T) attention matrix is never stored: at T = 512 it is 1 MB per head, and writing it in the
// forward and reading it twice in the backward cost more than recomputing it. The forward keeps
// each row's max and 1/sum, and applies the 1/sum to the output rows rather than to the
// probabilities (a pass over each row fewer); the backward recomputes the scores with the same
// tiles (so the exponentials are bit-identical to the forward's) and uses
// rowsum(att * datt) = <dout, out>.
constexpr int kQueryTile = 6;
constexpr int kQueryBlock = 48;  // queries per dk/dv update (P and dS blocks stay in L2)

// Heads of exactly 8 channels: one vector per row of q, k, v, too narrow for product tiles (the
// small task's 32x32x8 head products spent most of their time in call and tail overhead). Here
// the 8 queries of a block share each vector instead: a key's scores for all of them are 8 FMAs
// against the block's transposed queries, the softmax's max and sum are lane-wise (no
// horizontal reductions), and the output accumulates transposed. Lanes past T are zero queries
// whose results are never stored. (AVX2 machines; AVX-512 ones take namespace q16 below.)
#ifndef __AVX512F__
namespace hs8 {

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
void forward(float* out, ptrdiff_t C, float* row_max, float* row_inv, const float* q,
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
        // independent, so several are in flight (one loop doing both was latency-bound)
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
void backward(float* dq, float* dk, float* dv, const float* dout, const float* out, ptrdiff_t C,
              const float* q, const float* k, const float* v, ptrdiff_t C3, const float* row_max,
              const float* row_inv, int T, float* probs, float* dscores) {
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
        // was latency-bound): probabilities and their gradients, then dq, then dk and dv
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

}  // namespace hs8
#else
// Heads of 8 or 16 channels on AVX-512: hs8's scheme with 16 queries per vector (T = 32 is two
// blocks, not four), for 16-channel heads too (the long-context task): there the tiles' output
// product has only 16 columns, one 16-lane vector, and 6 rows per query tile (6 accumulators,
// latency-bound), while here every product keeps HS independent accumulators busy.
namespace q16 {

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

// sum_c row[c] * cols[c], in two chains (for HS = 8 the same sums as hs8::row_dot)
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
        // probabilities and their gradients, then dq, then dk and dv (as in hs8)
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

}  // namespace q16
#endif

void attention_forward_small(bool par, float* out, float* row_max, float* row_inv, const float* qkv,
                             int B, int T, int C, int NH,
                             tbb::enumerable_thread_specific<AttentionScratch>& scratch) {
    const int C3 = 3 * C, hs = C / NH, Tp = scratch_stride(T);
    const float scale = 1.0f / sqrtf((float)hs);
    parallel_range(par, B * NH, (double)B * NH * T * T * hs, 1, [&](int bh0, int bh1) {
        AttentionScratch& s = scratch.local();
        float* att = s.att.data();
        float* kt = s.kt.data();
        for (int bh = bh0; bh < bh1; bh++) {
            const int b = bh / NH, h = bh % NH;
            const auto [q, k, v] = head_qkv(qkv, b, h, T, C, hs);
            float* mx = row_max + (size_t)bh * T;
            float* inv = row_inv + (size_t)bh * T;
#ifdef __AVX512F__
            if (hs == 8 || hs == 16) {
                float* o = out + head_offset(b, h, T, C, hs);
                if (hs == 8)
                    q16::forward<8>(o, C, mx, inv, q, k, v, C3, T, att);
                else
                    q16::forward<16>(o, C, mx, inv, q, k, v, C3, T, att);
                continue;
            }
#else
            if (hs == 8) {
                hs8::forward(out + head_offset(b, h, T, C, hs), C, mx, inv, q, k, v, C3, T, att);
                continue;
            }
#endif
            fast::transpose(k, C3, kt, Tp, T, hs);
            for (int i0 = 0; i0 < T; i0 += kQueryTile) {
                const int m = std::min(kQueryTile, T - i0), i1 = i0 + m;
                fast::gemm_small(m, fast::round_up8(i1), hs, q + (size_t)i0 * C3, C3, 1, kt, Tp,
                                 att, Tp, scale, false);
                for (int t = i0; t < i1; t++) {
                    float* row = att + (size_t)(t - i0) * Tp;
                    fast::softmax_row_unscaled(row, t + 1, mx[t], inv[t]);
                    std::fill(row + std::min(fast::round_up8(t + 1), i1), row + i1, 0.0f);
                }
                float* o = out + head_offset(b, h, T, C, hs) + (size_t)i0 * C;
                fast::gemm_small(m, hs, i1, att, Tp, 1, v, C3, o, C, 1.0f, false);
                for (int t = i0; t < i1; t++) {
                    const __m256 scale_row = _mm256_set1_ps(inv[t]);
                    float* ot = o + (size_t)(t - i0) * C;
                    for (int c = 0; c < hs; c += 8)
                        _mm256_storeu_ps(ot + c, _mm256_mul_ps(_mm256_loadu_ps(ot + c), scale_row));
                }
            }
        }
    });
}

// dqkv is overwritten.
void attention_backward_small(bool par, float* dqkv, const float* dout, const float* qkv,
                              const float* out, const float* row_max, const float* row_inv, int B,
                              int T, int C, int NH,
                              tbb::enumerable_thread_specific<AttentionScratch>& scratch) {
    const int C3 = 3 * C, hs = C / NH, Tp = scratch_stride(T);
    const float scale = 1.0f / sqrtf((float)hs);
    parallel_range(par, B * NH, (double)B * NH * T * T * hs, 1, [&](int bh0, int bh1) {
        AttentionScratch& s = scratch.local();
        float* att = s.att.data();
        float* dpre = s.dpre.data();
        float* kt = s.kt.data();
        float* vt = s.vt.data();
        float* rowdot = s.rowdot.data();
        for (int bh = bh0; bh < bh1; bh++) {
            const int b = bh / NH, h = bh % NH;
            const auto [q, k, v] = head_qkv(qkv, b, h, T, C, hs);
            const auto [dq, dk, dv] = head_dqkv(dqkv, b, h, T, C, hs);
            const float* d = dout + head_offset(b, h, T, C, hs);
            const float* o = out + head_offset(b, h, T, C, hs);
            const float* mx = row_max + (size_t)bh * T;
            const float* inv = row_inv + (size_t)bh * T;
#ifdef __AVX512F__
            if (hs == 8 || hs == 16) {
                if (hs == 8)
                    q16::backward<8>(dq, dk, dv, d, o, C, q, k, v, C3, mx, inv, T, att, dpre);
                else
                    q16::backward<16>(dq, dk, dv, d, o, C, q, k, v, C3, mx, inv, T, att, dpre);
                continue;
            }
#else
            if (hs == 8) {
                hs8::backward(dq, dk, dv, d, o, C, q, k, v, C3, mx, inv, T, att, dpre);
                continue;
            }
#endif
            fast::transpose(k, C3, kt, Tp, T, hs);
            fast::transpose(v, C3, vt, Tp, T, hs);
            for (int j = 0; j < T; j++) {
                const float* dj = d + (size_t)j * C;
                const float* oj = o + (size_t)j * C;
                __m256 dot = _mm256_mul_ps(_mm256_loadu_ps(dj), _mm256_loadu_ps(oj));
                for (int c = 8; c < hs; c += 8)
                    dot = _mm256_fmadd_ps(_mm256_loadu_ps(dj + c), _mm256_loadu_ps(oj + c), dot);
                rowdot[j] = fast::hsum8(dot);  // = sum over keys of att * datt
                std::fill(dk + (size_t)j * C3, dk + (size_t)j * C3 + hs, 0.0f);
                std::fill(dv + (size_t)j * C3, dv + (size_t)j * C3 + hs, 0.0f);
            }
            for (int q0 = 0; q0 < T; q0 += kQueryBlock) {
                const int q1 = std::min(T, q0 + kQueryBlock);
                // per query tile: recompute att, datt = dout v^T, the O(T) softmax backward
                // dpre = att * (datt - rowdot) * scale, then dq = dpre k
                for (int i0 = q0; i0 < q1; i0 += kQueryTile) {
                    const int m = std::min(kQueryTile, q1 - i0), i1 = i0 + m;
                    const int n = fast::round_up8(i1);
                    float* a = att + (size_t)(i0 - q0) * Tp;
                    float* dp = dpre + (size_t)(i0 - q0) * Tp;
                    fast::gemm_small(m, n, hs, q + (size_t)i0 * C3, C3, 1, kt, Tp, a, Tp, scale,
                                     false);
                    fast::gemm_small(m, n, hs, d + (size_t)i0 * C, C, 1, vt, Tp, dp, Tp, 1.0f,
                                     false);
                    for (int t = i0; t < i1; t++) {
                        float* ar = a + (size_t)(t - i0) * Tp;
                        float* dr = dp + (size_t)(t - i0) * Tp;
                        fast::softmax_row_backward(ar, dr, t + 1, mx[t], inv[t], rowdot[t], scale);
                        const int z = std::min(fast::round_up8(t + 1), q1);
                        std::fill(ar + z, ar + q1, 0.0f);
                        std::fill(dr + z, dr + q1, 0.0f);
                    }
                    fast::gemm_small(m, hs, i1, dp, Tp, 1, k, C3, dq + (size_t)i0 * C3, C3, 1.0f,
                                     false);
                }
                // keys 0..q1 from this block's queries: dv += att^T dout, dk += dpre^T q
                fast::gemm_small(q1, hs, q1 - q0, att, 1, Tp, d + (size_t)q0 * C, C, dv, C3, 1.0f,
                                 true);
                fast::gemm_small(q1, hs, q1 - q0, dpre, 1, Tp, q + (size_t)q0 * C3, C3, dk, C3,
                                 1.0f, true);
            }
        }
    });
}

// att is used (and must be non-null) only when !small_heads; row_max and row_inv only when it is.
void attention_forward(bool par, float* out, float* att, float* row_max, float* row_inv,
                       const float* qkv, int B, int T, int C, int NH,
                       tbb::enumerable_thread_specific<AttentionScratch>& scratch) {
    if (small_heads(C, NH))
        attention_forward_small(par, out, row_max, row_inv, qkv, B, T, C, NH, scratch);
    else
        attention_forward_blas(par, out, att, qkv, B, T, C, NH, scratch);
}

void attention_backward(bool par, float* dqkv, const float* dout, const float* qkv,
                        const float* out, const float* att, const float* row_max,
                        const float* row_inv, int B, int T, int C, int NH,
                        tbb::enumerable_thread_specific<AttentionScratch>& scratch) {
    if (small_heads(C, NH))
        attention_backward_small(par, dqkv, dout, qkv, out, row_max, row_inv, B, T, C, NH, scratch);
    else
        attention_backward_blas(par, dqkv, dout, qkv, att, B, T, C, NH, scratch);
}

// ----------------------------------------------------------------------------------------------
// softmax + cross-entropy + its backward, one pass per row. logits become dlogits in place.

// dloss_scale is 1 / (rows of the whole batch): the loss is the mean over the whole batch.
void softmax_xent(bool par, float* logits, float* losses, const int* targets, int BT, int V,
                  float dloss_scale) {
    const float dloss = dloss_scale;
    parallel_range(par, BT, (double)BT * V * 8, 4, [&](int r0, int r1) {
        for (int i = r0; i < r1; i++) {
            float* row = logits + (size_t)i * V;
            const float maxval = fast::max_of(row, V);
            const float target_logit = row[targets[i]];
            const float sum = fast::exp_shift_sum(row, row, V, maxval);
            losses[i] = logf(sum) - (target_logit - maxval);
            const float scale = dloss / sum;
#pragma omp simd
            for (int j = 0; j < V; j++) row[j] *= scale;
            row[targets[i]] -= dloss;
        }
    });
}

// The LM head for a wide vocabulary, logits stored transposed, (V, BT): the products then keep
// the small operand (lnf, (BT,C)) in L1 and stream the (V,C) embedding through once, instead of
// walking 16-column panels of a (C,V) matrix whose rows are 32 KB apart, and kVecLanes positions
// are one vector in the softmax. The head runs in chunks of kHeadChunk vocabulary rows, each
// finished while it is in L2, with an online softmax: per position a running max, and a sum of
// exponentials rescaled whenever the max grows. The forward stores each chunk's exponentials
// against the running max of that moment; the backward turns them into dlogits with one
// multiply by exp(running max - final max) * dloss / sum per chunk and position. One exp per
// logit (they were a third of the head's time) and one pass over the (V,BT) matrix between the
// products instead of three.
constexpr int kHeadChunk = 512;  // a multiple of kKChunk: dlnf sums in the same order
constexpr int kHeadGroup = 4;

int head_chunks(int V) {
    return (V + kHeadChunk - 1) / kHeadChunk;
}

// logitsT(V,BT) = exp(wte(V,C) lnfT(C,BT) - chunk_max) chunk by chunk, chunk_max (chunks, BT)
// the running max after each chunk; col_sum (BT) ends as the sum of exp(logit - final max),
// the final max being chunk_max's last row; losses (BT). BT must be a multiple of kVecLanes.
void lm_head_forward_transposed(float* logitsT, float* losses, float* chunk_max, float* col_sum,
                                const float* wte, const float* lnfT, const int* targets, int BT,
                                int C, int V, KernelProfile& profile) {
    constexpr int W = fast::kVecLanes;
    for (int v0 = 0, c = 0; v0 < V; v0 += kHeadChunk, c++) {
        const int rows = std::min(V - v0, kHeadChunk);
        float* chunk = logitsT + (size_t)v0 * BT;
        {
            KernelTimer timer(profile, KernelId::matmul);
            fast::gemm_small(rows, BT, C, wte + (size_t)v0 * C, C, 1, lnfT, BT, chunk, BT, 1.0f,
                             false);
        }
        KernelTimer timer(profile, KernelId::softmax_xent);
        for (int i = 0; i < BT; i++)  // the target logit, before it becomes an exponential
            if (targets[i] >= v0 && targets[i] < v0 + rows)
                losses[i] = -logitsT[(size_t)targets[i] * BT + i];
        float* mx_out = chunk_max + (size_t)c * BT;
        // kHeadGroup vectors of positions at a time: independent max and sum chains, and whole
        // cache lines of each row
        for (int g0 = 0; g0 < BT; g0 += kHeadGroup * W) {
            const int n = std::min(kHeadGroup, (BT - g0) / W);
            fast::Vec old_max[kHeadGroup], mx[kHeadGroup], sum[kHeadGroup];
            for (int j = 0; j < n; j++) {
                old_max[j] = c == 0 ? fast::vset(-INFINITY) : fast::vload(mx_out - BT + g0 + j * W);
                mx[j] = old_max[j];
            }
            for (int v = 0; v < rows; v++)
                for (int j = 0; j < n; j++)
                    mx[j] = fast::vmax(mx[j], fast::vload(chunk + v * BT + g0 + j * W));
            // first chunk: exp(-inf) is 0 (exp16) or exp8's clamped minimum, times a sum of 0
            for (int j = 0; j < n; j++) {
                const fast::Vec old_sum =
                    c == 0 ? fast::vset(0.0f) : fast::vload(col_sum + g0 + j * W);
                sum[j] = fast::vmul(old_sum, fast::vexp(fast::vsub(old_max[j], mx[j])));
            }
            for (int v = 0; v < rows; v++) {
                for (int j = 0; j < n; j++) {
                    float* x = chunk + v * BT + g0 + j * W;
                    const fast::Vec e = fast::vexp(fast::vsub(fast::vload(x), mx[j]));
                    fast::vstore(x, e);
                    sum[j] = fast::vadd(sum[j], e);
                }
            }
            for (int j = 0; j < n; j++) {
                fast::vstore(mx_out + g0 + j * W, mx[j]);
                fast::vstore(col_sum + g0 + j * W, sum[j]);
            }
        }
    }
    const float* final_max = chunk_max + (size_t)(head_chunks(V) - 1) * BT;
    for (int i = 0; i < BT; i++) losses[i] += final_max[i] + logf(col_sum[i]);
}

// Chunk by chunk: dlogits in place (exp(logit - max) * dloss / sum, minus dloss at the
// target), then that chunk's rows of dwte(V,C) (overwritten) and its share of dlnf(BT,C)
// (overwritten by the first chunk). chunk_max and col_sum as the forward left them; col_sum
// becomes dloss / sum; col_factor (BT) is scratch.
void lm_head_backward_transposed(float* logitsT, float* dlnf, float* dwte, const float* chunk_max,
                                 float* col_sum, float* col_factor, const float* wte,
                                 const float* lnf, const int* targets, int BT, int C, int V,
                                 float dloss, KernelProfile& profile) {
    constexpr int W = fast::kVecLanes;
    const float* final_max = chunk_max + (size_t)(head_chunks(V) - 1) * BT;
    for (int i = 0; i < BT; i++) col_sum[i] = dloss / col_sum[i];
    for (int v0 = 0, c = 0; v0 < V; v0 += kHeadChunk, c++) {
        const int rows = std::min(V - v0, kHeadChunk);
        float* chunk = logitsT + (size_t)v0 * BT;
        {
            KernelTimer timer(profile, KernelId::softmax_xent);
            for (int g = 0; g < BT; g += W) {
                const fast::Vec rescale = fast::vexp(fast::vsub(
                    fast::vload(chunk_max + (size_t)c * BT + g), fast::vload(final_max + g)));
                fast::vstore(col_factor + g, fast::vmul(rescale, fast::vload(col_sum + g)));
            }
            for (int v = 0; v < rows; v++) {
                float* x = chunk + v * BT;
                for (int g = 0; g < BT; g += W)
                    fast::vstore(x + g,
                                 fast::vmul(fast::vload(x + g), fast::vload(col_factor + g)));
            }
            for (int i = 0; i < BT; i++)
                if (targets[i] >= v0 && targets[i] < v0 + rows)
                    logitsT[(size_t)targets[i] * BT + i] -= dloss;
        }
        KernelTimer timer(profile, KernelId::matmul);
        fast::gemm_small(rows, C, BT, chunk, BT, 1, lnf, C, dwte + (size_t)v0 * C, C, 1.0f, false);
        fast::gemm_small(BT, C, rows, chunk, 1, BT, wte + (size_t)v0 * C, C, dlnf, C, 1.0f, v0 > 0);
    }
}

// ----------------------------------------------------------------------------------------------
// the model

// A piece of an arena (Activations::arena).
struct ArenaSlice {
    float* ptr = nullptr;
    float* data() const { return ptr; }
    float& operator[](size_t i) const { return ptr[i]; }
};

// fch holds the fc layer's output until the GELU forward overwrites it with GELU's derivative.
// All of a replica's activations are slices of one arena: one allocation on huge pages instead
// of 31, most under the huge-page threshold, whose 4 KB page faults were 15-20% of a one-step
// long-context run.
struct Activations {
    fast::HugeBuffer arena;
    ArenaSlice encoded, ln1, ln1_mean, ln1_rstd, qkv, atty, att, att_max, att_inv, residual2, ln2,
        ln2_mean, ln2_rstd, fch, fch_gelu, residual3, lnf, lnf_mean, lnf_rstd, lnfT, chunk_max,
        col_sum, col_factor, logits, losses;
    // backward scratch
    ArenaSlice dres, dres2, dln, dqkv, datty, dfch;
};

// One slice of the batch (rows b0 .. b0+B-1) with its own activations and gradients.
struct Replica {
    int b0 = 0, B = 0;
    bool par = false;  // may its kernels use the thread pool (only when it is the only replica)
    fast::HugeBuffer grads;
    ParameterTensors g{};
    Activations a;
    tbb::enumerable_thread_specific<AttentionScratch> scratch;
    KernelProfile profile;
};

// Which products run on fast::gemm_small tiles instead of sgemm: the layers', when every
// replica runs single-threaded and the layers are narrow (there sgemm's per-call set-up and
// packing cost more than the products); the LM head's too when it is small, and with a wide
// vocabulary the LM head with logits stored (V,BT).
struct TiledProducts {
    bool layers = false, head = false;
    bool logits_transposed = false;
};

// The update in pieces that a thread can take as soon as every replica's backward has produced
// their gradients: a layer's parameters are final once all replicas are past that layer, so the
// thread whose replica finishes first updates the top layers while the other still works on the
// lower ones (waiting for the slower replica was 5-10% of a step). AdamW is elementwise, so
// which thread updates which piece does not change a bit of the result.
struct UpdateUnit {
    size_t begin = 0, end = 0;  // parameter range
    int stage = 0;              // backward stage that completes its gradients (see StepProgress)
};

// Per step: how many backward stages each replica has completed (stage 0: LM head and final
// layernorm; 1 + (L-1-l): layer l; L+1: the embeddings), and the next update unit to take.
struct StepProgress {
    struct alignas(64) Counter {
        std::atomic<int> value{0};
    };
    std::unique_ptr<Counter[]> stages_done;
    alignas(64) std::atomic<int> next_unit{0};
};

struct Model {
    GPTConfig cfg;
    int T = 0;
    std::vector<float> params;  // std::vector for write_trainer_outputs
    fast::HugeBuffer m, v;
    ParameterTensors p{};
    TiledProducts tiled;
    // With several replicas: one spinning thread per replica, which runs its replica's forward
    // and backward and then takes update units (below) until none is left.
    std::unique_ptr<fast::SpinPool> pool;
    std::vector<UpdateUnit> update_units;
    std::unique_ptr<StepProgress> progress;
    std::vector<Replica> replicas;
    std::vector<float> replica_loss_sums;
    KernelProfile update_profile;
};

void activations_create(Activations& a, const GPTConfig& cfg, size_t B, size_t T) {
    const size_t BT = B * T, C = cfg.channels, L = cfg.num_layers, V = cfg.vocab_size;
    const size_t NH = cfg.num_heads;
    const bool small = small_heads(cfg.channels, cfg.num_heads);
    struct Field {
        ArenaSlice* slice;
        size_t size;
    };
    const Field fields[] = {
        {&a.encoded, BT * C},
        {&a.ln1, L * BT * C},
        {&a.ln1_mean, L * BT},
        {&a.ln1_rstd, L * BT},
        {&a.qkv, L * BT * 3 * C},
        {&a.atty, L * BT * C},
        {&a.att_max, small ? L * B * NH * T : 0},
        {&a.att_inv, small ? L * B * NH * T : 0},
        {&a.att, small ? 0 : L * B * NH * T * T},
        {&a.residual2, L * BT * C},
        {&a.ln2, L * BT * C},
        {&a.ln2_mean, L * BT},
        {&a.ln2_rstd, L * BT},
        {&a.fch, L * BT * 4 * C},
        {&a.fch_gelu, L * BT * 4 * C},
        {&a.residual3, L * BT * C},
        {&a.lnf, BT * C},
        {&a.lnf_mean, BT},
        {&a.lnf_rstd, BT},
        {&a.lnfT, BT * C},
        {&a.chunk_max, (size_t)head_chunks(V) * BT},
        {&a.col_sum, BT},
        {&a.col_factor, BT},
        {&a.logits, BT * V},
        {&a.losses, BT},
        {&a.dres, BT * C},
        {&a.dres2, BT * C},
        {&a.dln, BT * C},
        {&a.dqkv, BT * 3 * C},
        {&a.datty, BT * C},
        {&a.dfch, BT * 4 * C},
    };
    auto padded = [](size_t n) { return (n + 15) / 16 * 16; };  // slices start 64-byte aligned
    size_t total = 0;
    for (const Field& f : fields) total += padded(f.size);
    a.arena.assign(total + 16, 0.0f);
    float* p = a.arena.data() + (16 - (uintptr_t)a.arena.data() / 4 % 16) % 16;
    for (const Field& f : fields) {
        f.slice->ptr = f.size > 0 ? p : nullptr;
        p += padded(f.size);
    }
}

// The widest layers whose products run on fast::gemm_small tiles rather than sgemm. Measured
// single core, the matmul task's d_model = 192 shapes: AVX-512 tiles 166-189 GFLOP/s against
// OpenBLAS's 139-166; AVX2 tiles lost to OpenBLAS above 128 (docs/performance.md).
#ifdef __AVX512F__
constexpr int kTiledWidth = 256;
#else
constexpr int kTiledWidth = 128;
#endif

TiledProducts choose_tiled_products(const GPTConfig& cfg, int T, int replicas) {
    const int C = cfg.channels, V = cfg.vocab_size;
    TiledProducts tiled;
    tiled.layers = replicas > 1 && C % 8 == 0 && C <= kTiledWidth;
    tiled.head = tiled.layers && V % 8 == 0 && (size_t)V * C <= 65536;
    tiled.logits_transposed = tiled.layers && !tiled.head && T % fast::kVecLanes == 0;
    return tiled;
}

// The update units in the order their gradients complete, pieces of about kUpdateChunk floats.
constexpr size_t kUpdateChunk = 16384;

std::vector<UpdateUnit> make_update_units(const Model& model) {
    const GPTConfig& cfg = model.cfg;
    const int L = cfg.num_layers;
    const auto sizes = param_tensor_sizes(cfg);
    std::vector<UpdateUnit> units;
    auto add_range = [&](size_t begin, size_t end, int stage) {
        for (size_t b = begin; b < end; b += kUpdateChunk)
            units.push_back({b, std::min(end, b + kUpdateChunk), stage});
    };
    size_t offsets[kNumParamTensors];
    size_t offset = 0;
    for (int i = 0; i < kNumParamTensors; i++) {
        offsets[i] = offset;
        offset += sizes[i];
    }
    const int lnfw = kNumParamTensors - 2, lnfb = kNumParamTensors - 1;
    add_range(offsets[lnfw], offsets[lnfw] + sizes[lnfw], 0);
    add_range(offsets[lnfb], offsets[lnfb] + sizes[lnfb], 0);
    for (int l = L - 1; l >= 0; l--) {
        for (int i = 2; i < lnfw; i++) {  // ln1w .. fcprojb: L stacked slices each
            const size_t per_layer = sizes[i] / L;
            add_range(offsets[i] + l * per_layer, offsets[i] + (l + 1) * per_layer, L - l);
        }
    }
    add_range(offsets[0], offsets[0] + sizes[0], L + 1);  // wte: the encoder's scatter is last
    add_range(offsets[1], offsets[1] + sizes[1], L + 1);  // wpe
    return units;
}

// Splits the batch into min(threads, B) replicas of near-equal size.
void model_create(Model& model, const GPTConfig& cfg, int B, int T, int threads) {
    model.cfg = cfg;
    model.T = T;
    const size_t n = num_parameters(cfg);
    const int count = std::max(1, std::min(threads, B));
    model.replicas = std::vector<Replica>(count);
    model.replica_loss_sums.assign(count, 0.0f);
    int b0 = 0;
    for (int r = 0; r < count; r++) {
        Replica& rep = model.replicas[r];
        rep.b0 = b0;
        rep.B = B / count + (r < B % count ? 1 : 0);
        rep.par = count == 1;
        b0 += rep.B;
    }
    // 10-40 MB of fresh zeroed memory, whose first touch costs ~2.5 us per 4 KB page on this VM
    // (15-20 ms of the matmul task's 0.5 s). Page faults on two threads take half the time, so
    // each replica's thread allocates its own buffers, and params, m and v go round the threads.
    auto allocate = [&](int r) {
        Replica& rep = model.replicas[r];
        rep.grads.assign(n, 0.0f);
        activations_create(rep.a, cfg, rep.B, T);
        for (int k = r; k < 3; k += count) {  // params is a std::vector, m and v HugeBuffers
            if (k == 0) model.params.assign(n, 0.0f);
            if (k == 1) model.m.assign(n, 0.0f);
            if (k == 2) model.v.assign(n, 0.0f);
        }
    };
    std::vector<std::thread> helpers;
    for (int r = 1; r < count; r++) helpers.emplace_back(allocate, r);
    allocate(0);
    for (std::thread& t : helpers) t.join();
    point_parameters(model.p, model.params.data(), cfg);
    for (int r = 0; r < count; r++) {
        Replica& rep = model.replicas[r];
        point_parameters(rep.g, rep.grads.data(), cfg);
        const size_t Tp = scratch_stride(T), hs = cfg.channels / cfg.num_heads;
        const bool small = small_heads(cfg.channels, cfg.num_heads);
        rep.scratch = tbb::enumerable_thread_specific<AttentionScratch>([=] {
            AttentionScratch s;
            if (small) {
                s.att.assign(kQueryBlock * Tp, 0.0f);
                s.dpre.assign(kQueryBlock * Tp, 0.0f);
                s.kt.assign(hs * Tp, 0.0f);
                s.vt.assign(hs * Tp, 0.0f);
                s.rowdot.assign(T, 0.0f);
            } else {
                s.scores.assign((size_t)T * T, 0.0f);
            }
            return s;
        });
    }
    model.tiled = choose_tiled_products(cfg, T, count);
    if (count > 1) {
        model.update_units = make_update_units(model);
        model.progress = std::make_unique<StepProgress>();
        model.progress->stages_done = std::make_unique<StepProgress::Counter[]>(count);
    }
}

// Forward, per-row losses and dlogits (in a.logits) for one replica. Returns its loss sum.
float forward(const Model& model, Replica& rep, const int* inputs, const int* targets,
              int total_rows) {
    const bool par = rep.par;
    const int B = rep.B, T = model.T, BT = B * T;
    const int C = model.cfg.channels, L = model.cfg.num_layers, NH = model.cfg.num_heads;
    const int V = model.cfg.vocab_size;
    const ParameterTensors& p = model.p;
    Activations& a = rep.a;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float* o = a.encoded.data() + ((size_t)b * T + t) * C;
            const float* wte = p.wte + (size_t)inputs[b * T + t] * C;
            const float* wpe = p.wpe + (size_t)t * C;
#pragma omp simd
            for (int i = 0; i < C; i++) o[i] = wte[i] + wpe[i];
        }
    }
    for (int l = 0; l < L; l++) {
        const size_t o1 = (size_t)l * BT * C, o3 = o1 * 3, o4 = o1 * 4, ob = (size_t)l * BT;
        const float* residual =
            l == 0 ? a.encoded.data() : a.residual3.data() + o1 - (size_t)BT * C;
        {
            KernelTimer timer(rep.profile, KernelId::layernorm);
            layernorm_forward(par, a.ln1.data() + o1, a.ln1_mean.data() + ob,
                              a.ln1_rstd.data() + ob, residual, p.ln1w + l * C, p.ln1b + l * C, BT,
                              C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.layers, a.qkv.data() + o3, a.ln1.data() + o1,
                           p.qkvw + (size_t)l * 3 * C * C, p.qkvb + l * 3 * C, nullptr, BT, C,
                           3 * C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::attention);
            const size_t oh = (size_t)l * B * NH * T;
            attention_forward(par, a.atty.data() + o1, a.att.data() + oh * T, a.att_max.data() + oh,
                              a.att_inv.data() + oh, a.qkv.data() + o3, B, T, C, NH, rep.scratch);
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.layers, a.residual2.data() + o1, a.atty.data() + o1,
                           p.attprojw + (size_t)l * C * C, p.attprojb + l * C, residual, BT, C, C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::layernorm);
            layernorm_forward(par, a.ln2.data() + o1, a.ln2_mean.data() + ob,
                              a.ln2_rstd.data() + ob, a.residual2.data() + o1, p.ln2w + l * C,
                              p.ln2b + l * C, BT, C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.layers, a.fch.data() + o4, a.ln2.data() + o1,
                           p.fcw + (size_t)l * 4 * C * C, p.fcb + l * 4 * C, nullptr, BT, C, 4 * C);
        }
        const int n4 = BT * 4 * C;
        {
            KernelTimer timer(rep.profile, KernelId::gelu);
            parallel_range(par, n4, (double)n4 * 4, 8192, [&](int r0, int r1) {
                fast::gelu_forward(a.fch_gelu.data() + o4 + r0, a.fch.data() + o4 + r0, r1 - r0);
            });
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.layers, a.residual3.data() + o1, a.fch_gelu.data() + o4,
                           p.fcprojw + (size_t)l * 4 * C * C, p.fcprojb + l * C,
                           a.residual2.data() + o1, BT, 4 * C, C);
        }
    }
    const float* last = a.residual3.data() + (size_t)(L - 1) * BT * C;
    {
        KernelTimer timer(rep.profile, KernelId::layernorm);
        layernorm_forward(par, a.lnf.data(), a.lnf_mean.data(), a.lnf_rstd.data(), last, p.lnfw,
                          p.lnfb, BT, C);
    }
    if (model.tiled.logits_transposed) {
        fast::transpose(a.lnf.data(), C, a.lnfT.data(), BT, BT, C);
        lm_head_forward_transposed(a.logits.data(), a.losses.data(), a.chunk_max.data(),
                                   a.col_sum.data(), p.wte, a.lnfT.data(), targets, BT, C, V,
                                   rep.profile);
    } else {
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.head, a.logits.data(), a.lnf.data(), p.wte, nullptr,
                           nullptr, BT, C, V);
        }
        KernelTimer timer(rep.profile, KernelId::softmax_xent);
        softmax_xent(par, a.logits.data(), a.losses.data(), targets, BT, V, 1.0f / total_rows);
    }
    float loss_sum = 0.0f;
    for (int i = 0; i < BT; i++) loss_sum += a.losses[i];
    return loss_sum;
}

// stages_done (may be null) is raised after each stage whose gradients are then final: the LM
// head and final layernorm, each layer, the embeddings (see StepProgress).
void backward(const Model& model, Replica& rep, const int* inputs, const int* targets,
              int total_rows, std::atomic<int>* stages_done) {
    auto stage_done = [&](int stages) {
        if (stages_done != nullptr) stages_done->store(stages, std::memory_order_release);
    };
    const bool par = rep.par;
    const int B = rep.B, T = model.T, BT = B * T;
    const int C = model.cfg.channels, L = model.cfg.num_layers, NH = model.cfg.num_heads;
    const int V = model.cfg.vocab_size;
    const ParameterTensors& p = model.p;
    ParameterTensors& g = rep.g;
    Activations& a = rep.a;
    // Every parameter gradient is written (not accumulated) by its kernel, the LM head's wte
    // gradient first, so the encoder's scatter-adds below land on it; only wpe's needs zeroing.
    std::fill(g.wpe, g.wpe + (size_t)model.cfg.max_seq_len * C, 0.0f);

    // LM head (tied to wte) and the final layernorm; the residual gradient lands in a.dres
    if (model.tiled.logits_transposed) {
        lm_head_backward_transposed(a.logits.data(), a.dln.data(), g.wte, a.chunk_max.data(),
                                    a.col_sum.data(), a.col_factor.data(), p.wte, a.lnf.data(),
                                    targets, BT, C, V, 1.0f / total_rows, rep.profile);
    } else {
        KernelTimer timer(rep.profile, KernelId::matmul);
        linear_backward(par, model.tiled.head, a.dln.data(), g.wte, nullptr, a.logits.data(),
                        a.lnf.data(), p.wte, BT, C, V);
    }
    const float* last = a.residual3.data() + (size_t)(L - 1) * BT * C;
    {
        KernelTimer timer(rep.profile, KernelId::layernorm);
        layernorm_backward(par, a.dres.data(), g.lnfw, g.lnfb, a.dln.data(), last, p.lnfw,
                           a.lnf_mean.data(), a.lnf_rstd.data(), nullptr, BT, C);
    }
    stage_done(1);

    for (int l = L - 1; l >= 0; l--) {
        const size_t o1 = (size_t)l * BT * C, o3 = o1 * 3, o4 = o1 * 4, ob = (size_t)l * BT;
        const float* residual =
            l == 0 ? a.encoded.data() : a.residual3.data() + o1 - (size_t)BT * C;
        // MLP: residual3 = residual2 + fcproj(gelu(fc(ln2(residual2))))
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_backward(par, model.tiled.layers, a.dfch.data(),
                            g.fcprojw + (size_t)l * 4 * C * C, g.fcprojb + l * C, a.dres.data(),
                            a.fch_gelu.data() + o4, p.fcprojw + (size_t)l * 4 * C * C, BT, 4 * C,
                            C);
        }
        const int n4 = BT * 4 * C;
        {
            KernelTimer timer(rep.profile, KernelId::gelu);
            parallel_range(par, n4, (double)n4 * 4, 8192, [&](int r0, int r1) {
                fast::gelu_backward(a.dfch.data() + r0, a.fch.data() + o4 + r0, a.dfch.data() + r0,
                                    r1 - r0);
            });
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_backward(par, model.tiled.layers, a.dln.data(), g.fcw + (size_t)l * 4 * C * C,
                            g.fcb + l * 4 * C, a.dfch.data(), a.ln2.data() + o1,
                            p.fcw + (size_t)l * 4 * C * C, BT, C, 4 * C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::layernorm);
            layernorm_backward(par, a.dres2.data(), g.ln2w + l * C, g.ln2b + l * C, a.dln.data(),
                               a.residual2.data() + o1, p.ln2w + l * C, a.ln2_mean.data() + ob,
                               a.ln2_rstd.data() + ob, a.dres.data(), BT, C);
        }
        // attention: residual2 = residual + attproj(attention(qkv(ln1(residual))))
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_backward(par, model.tiled.layers, a.datty.data(), g.attprojw + (size_t)l * C * C,
                            g.attprojb + l * C, a.dres2.data(), a.atty.data() + o1,
                            p.attprojw + (size_t)l * C * C, BT, C, C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::attention);
            const size_t oh = (size_t)l * B * NH * T;
            attention_backward(par, a.dqkv.data(), a.datty.data(), a.qkv.data() + o3,
                               a.atty.data() + o1, a.att.data() + oh * T, a.att_max.data() + oh,
                               a.att_inv.data() + oh, B, T, C, NH, rep.scratch);
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_backward(par, model.tiled.layers, a.dln.data(), g.qkvw + (size_t)l * 3 * C * C,
                            g.qkvb + l * 3 * C, a.dqkv.data(), a.ln1.data() + o1,
                            p.qkvw + (size_t)l * 3 * C * C, BT, C, 3 * C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::layernorm);
            layernorm_backward(par, a.dres.data(), g.ln1w + l * C, g.ln1b + l * C, a.dln.data(),
                               residual, p.ln1w + l * C, a.ln1_mean.data() + ob,
                               a.ln1_rstd.data() + ob, a.dres2.data(), BT, C);
        }
        stage_done(L - l + 1);
    }
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float* d = a.dres.data() + ((size_t)b * T + t) * C;
            float* dwte = g.wte + (size_t)inputs[b * T + t] * C;
            float* dwpe = g.wpe + (size_t)t * C;
#pragma omp simd
            for (int i = 0; i < C; i++) {
                dwte[i] += d[i];
                dwpe[i] += d[i];
            }
        }
    }
    stage_done(L + 2);
}

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

// Sums the replicas' gradients (in replica order, so the result is deterministic) and applies
// AdamW to params[r0, r1), in one pass.
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

// Takes update units in order until none is left, each once every replica's backward has
// completed its stage. Only the updating is timed (as adamw), not the waiting.
void run_update_units(Model& model, const TrainSpec& ts, int t, KernelProfile& profile) {
    StepProgress& progress = *model.progress;
    const int count = (int)model.replicas.size();
    const int n = (int)model.update_units.size();
    for (int u = progress.next_unit.fetch_add(1, std::memory_order_relaxed); u < n;
         u = progress.next_unit.fetch_add(1, std::memory_order_relaxed)) {
        const UpdateUnit& unit = model.update_units[u];
        int spins = 0;
        for (int r = 0; r < count; r++)
            while (progress.stages_done[r].value.load(std::memory_order_acquire) <= unit.stage)
                model.pool->backoff(spins);
        KernelTimer timer(profile, KernelId::adamw);
        adamw_range(model, ts, t, (int)unit.begin, (int)unit.end);
    }
}

// One training step over the whole batch, the update included; returns the mean loss (of the
// parameters before the update). t counts steps from 1.
float train_step(Model& model, const TrainSpec& ts, int t, const int* inputs, const int* targets,
                 int total_rows) {
    const int count = (int)model.replicas.size();
    std::vector<float>& sums = model.replica_loss_sums;
    auto run = [&](int r, std::atomic<int>* stages_done) {
        Replica& rep = model.replicas[r];
        const size_t offset = (size_t)rep.b0 * model.T;
        sums[r] = forward(model, rep, inputs + offset, targets + offset, total_rows);
        backward(model, rep, inputs + offset, targets + offset, total_rows, stages_done);
    };
    if (count == 1) {
        run(0, nullptr);
        KernelTimer timer(model.update_profile, KernelId::adamw);
        const int n = (int)model.params.size();
        parallel_range(true, n, (double)n * 2, 16384,
                       [&](int r0, int r1) { adamw_range(model, ts, t, r0, r1); });
    } else {
        StepProgress& progress = *model.progress;
        for (int r = 0; r < count; r++) progress.stages_done[r].value.store(0);
        progress.next_unit.store(0);
        model.pool->run([&](int r) {
            run(r, &progress.stages_done[r].value);
            run_update_units(model, ts, t, model.replicas[r].profile);
        });
    }
    float total = 0.0f;
    for (float s : sums) total += s;
    return total / total_rows;
}

// gpt_init_params in parallel and vectorized. splitmix64 is a counter-based generator (draw k is
// mix(state + (k + 1) * gamma)), so a chunk of parameters can start at its own draw index; the
// floats are the reference's (fast::init_normals).
void init_params_parallel(float* params, const GPTConfig& cfg, uint64_t seed) {
    auto sizes = param_tensor_sizes(cfg);
    const float residual_scale = 1.0f / std::sqrt(2.0f * cfg.num_layers);
    const uint64_t gamma = 0x9E3779B97F4A7C15ull, start_state = init_stream_seed(seed);
    uint64_t draws_before = 0;  // u64 draws consumed by earlier tensors (two per normal)
    float* p = params;
    for (int i = 0; i < kNumParamTensors; i++) {
        const std::string name = kParamTensorNames[i];
        const bool ln_weight = name == "ln1w" || name == "ln2w" || name == "lnfw";
        const bool bias = name == "qkvb" || name == "attprojb" || name == "fcb" ||
                          name == "fcprojb" || name == "ln1b" || name == "ln2b" || name == "lnfb";
        const bool residual_proj = name == "attprojw" || name == "fcprojw";
        const int n = (int)sizes[i];
        if (ln_weight || bias) {
            std::fill(p, p + n, ln_weight ? 1.0f : 0.0f);
        } else {
            const uint64_t first = draws_before;
            const float scale = residual_proj ? residual_scale : 1.0f;
            parallel_range(true, n, (double)n * 10, 4096, [&](int j0, int j1) {
                Rng rng(start_state + (first + 2 * (uint64_t)j0) * gamma);
                fast::init_normals(rng, p + j0, j1 - j0, scale);
            });
            draws_before += 2 * (uint64_t)n;
        }
        p += n;
    }
}

int fail(const std::string& message) {
    fprintf(stderr, "trainopt-train: error: %s\n", message.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    blas::configure();  // before any thread exists
    CLI::App app{"trainopt expert trainer"};
    std::string task_path, data_dir, out_dir, nonce;
    uint64_t seed = 0;
    int threads = 0;
    app.add_option("--task", task_path)->required();
    app.add_option("--data", data_dir)->required();
    app.add_option("--seed", seed)->required();
    app.add_option("--out", out_dir)->required();
    app.add_option("--nonce", nonce)->required();
    app.add_option("--threads", threads);
    CLI11_PARSE(app, argc, argv);

    const int pool = threads > 0 ? threads : (int)std::thread::hardware_concurrency();
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, pool);

    TaskSpec task;
    std::string error;
    if (!load_task(task_path, task, error)) return fail(error);
    std::vector<int> tokens;
    if (!read_tokens(data_dir + "/train.bin", task.model.vocab_size, tokens, error))
        return fail(error);
    if (tokens.size() < (size_t)task.model.context + 2) return fail("train.bin is too short");
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);

    const GPTConfig cfg{task.model.vocab_size, task.model.context, task.model.d_model,
                        task.model.layers, task.model.heads};
    const int B = task.train.batch, T = task.model.context;
    Model model;
    model_create(model, cfg, B, T, pool);
    init_params_parallel(model.params.data(), cfg, seed);
    // started only now: its spinning threads would compete with oneTBB's during initialisation
    if (model.replicas.size() > 1)
        model.pool = std::make_unique<fast::SpinPool>(model.replicas.size());

    std::vector<int> inputs(B * T), targets(B * T);
    std::vector<float> losses(task.train.steps);
    Rng rng(data_stream_seed(seed));
    const uint64_t range = tokens.size() - T - 1;
    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < task.train.steps; step++) {
        for (int b = 0; b < B; b++) {
            const size_t s = rng.next_below(range);
            std::copy(tokens.begin() + s, tokens.begin() + s + T, inputs.begin() + b * T);
            std::copy(tokens.begin() + s + 1, tokens.begin() + s + T + 1, targets.begin() + b * T);
        }
        losses[step] =
            train_step(model, task.train, step + 1, inputs.data(), targets.data(), B * T);
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    model.pool.reset();  // stop the spinning workers before the serial output writing

    // replica 0's kernel times (replicas run in parallel on equal shares; its adamw is the
    // update units its thread took), plus the single-replica update
    TrainerRunInfo info{nonce, seed, task.name, elapsed.count(), model.replicas[0].profile};
    info.profile.seconds[static_cast<int>(KernelId::adamw)] +=
        model.update_profile.seconds[static_cast<int>(KernelId::adamw)];
    error = write_trainer_outputs(out_dir, losses, cfg, model.params, info);
    if (!error.empty()) return fail(error);
    return 0;
}
