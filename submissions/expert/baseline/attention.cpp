#include "attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "attention_query_lanes.h"
#include "fast_math.h"
#include "lazy_blas.h"
#include "parallel_range.h"
#include "small_gemm.h"

namespace trainopt {
namespace {

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

// ----------------------------------------------------------------------------------------------
// Heads whose width is not a multiple of 8: sgemm, with the (T,T) probabilities of every head
// stored for the backward (att, (B,NH,T,T)). The causal mask makes the upper triangle of every
// (T,T) product zero, so the sgemms run on row blocks of kAttentionBlock queries against only
// the keys they can see: for T = 512 that is 56% of the full products' work.
constexpr int kAttentionBlock = 64;

// out(B,T,C), att(B,NH,T,T) from qkv(B,T,3C)
void attention_forward_blas(bool par, float* out, float* att, const float* qkv, int B, int T, int C,
                            int NH, AttentionScratch& scratch) {
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

// dqkv(B,T,3C), overwritten, from dout(B,T,C) and the forward's att(B,NH,T,T)
void attention_backward_blas(bool par, float* dqkv, const float* dout, const float* qkv,
                             const float* att, int B, int T, int C, int NH,
                             AttentionScratch& scratch) {
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

// ----------------------------------------------------------------------------------------------
// Heads of 8, 16, 24... channels, flash-attention style. The products are too small for sgemm
// calls to pay off (a head of the small task is a 32x32x8 product), so they run on
// fast::gemm_small tiles of kQueryTile queries, each against only the keys it can see. The
// (T,T) attention matrix is never stored: at T = 512 it is 1 MB per head, and writing it in the
// forward and reading it twice in the backward costs more than recomputing it. The forward keeps
// each row's max and 1/sum, and applies the 1/sum to the output rows, not to the probabilities
// (a pass over each row fewer); the backward recomputes the scores with the same tiles (so the
// exponentials are bit-identical to the forward's) and uses rowsum(att * datt) = <dout, out>.
// Heads of 8 channels (16 too, on AVX-512) take the one-query-per-lane kernels of
// attention_query_lanes.h.
constexpr int kQueryTile = 6;
constexpr int kQueryBlock = 48;  // queries per dk/dv update (P and dS blocks stay in L2)

// Row stride of the flash path's scratch matrices (att, dpre, kt, vt): T rounded up to 8, plus
// 16 floats so that rows are never a power-of-two multiple of 512 bytes apart. At T = 512 a
// stride of 2 KB maps all 16 rows of a key panel into 2 of L1's 64 sets (8 ways each).
int scratch_stride(int T) {
    return fast::round_up8(T) + 16;
}

// out(B,T,C), row_max(B,NH,T), row_inv(B,NH,T) from qkv(B,T,3C)
void attention_forward_flash(bool par, float* out, float* row_max, float* row_inv, const float* qkv,
                             int B, int T, int C, int NH, AttentionScratch& scratch) {
    const int C3 = 3 * C, hs = C / NH, Tp = scratch_stride(T);
    const float scale = 1.0f / sqrtf((float)hs);
    parallel_range(par, B * NH, (double)B * NH * T * T * hs, 1, [&](int bh0, int bh1) {
        AttentionBuffers& s = scratch.local();
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
                    query_lanes16::forward<8>(o, C, mx, inv, q, k, v, C3, T, att);
                else
                    query_lanes16::forward<16>(o, C, mx, inv, q, k, v, C3, T, att);
                continue;
            }
#else
            if (hs == 8) {
                float* o = out + head_offset(b, h, T, C, hs);
                query_lanes8::forward(o, C, mx, inv, q, k, v, C3, T, att);
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

// dqkv(B,T,3C), overwritten, from dout(B,T,C) and the forward's out, row_max and row_inv
void attention_backward_flash(bool par, float* dqkv, const float* dout, const float* qkv,
                              const float* out, const float* row_max, const float* row_inv, int B,
                              int T, int C, int NH, AttentionScratch& scratch) {
    const int C3 = 3 * C, hs = C / NH, Tp = scratch_stride(T);
    const float scale = 1.0f / sqrtf((float)hs);
    parallel_range(par, B * NH, (double)B * NH * T * T * hs, 1, [&](int bh0, int bh1) {
        AttentionBuffers& s = scratch.local();
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
                    query_lanes16::backward<8>(dq, dk, dv, d, o, C, q, k, v, C3, mx, inv, T, att,
                                               dpre);
                else
                    query_lanes16::backward<16>(dq, dk, dv, d, o, C, q, k, v, C3, mx, inv, T, att,
                                                dpre);
                continue;
            }
#else
            if (hs == 8) {
                query_lanes8::backward(dq, dk, dv, d, o, C, q, k, v, C3, mx, inv, T, att, dpre);
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

}  // namespace

bool uses_flash_attention(int C, int NH) {
    return (C / NH) % 8 == 0;
}

AttentionScratch attention_scratch_create(int T, int C, int NH) {
    const size_t Tp = scratch_stride(T), hs = C / NH;
    const bool flash = uses_flash_attention(C, NH);
    return AttentionScratch([=] {
        AttentionBuffers s;
        if (flash) {
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

void attention_forward(bool par, float* out, float* att, float* row_max, float* row_inv,
                       const float* qkv, int B, int T, int C, int NH, AttentionScratch& scratch) {
    if (uses_flash_attention(C, NH))
        attention_forward_flash(par, out, row_max, row_inv, qkv, B, T, C, NH, scratch);
    else
        attention_forward_blas(par, out, att, qkv, B, T, C, NH, scratch);
}

void attention_backward(bool par, float* dqkv, const float* dout, const float* qkv,
                        const float* out, const float* att, const float* row_max,
                        const float* row_inv, int B, int T, int C, int NH,
                        AttentionScratch& scratch) {
    if (uses_flash_attention(C, NH))
        attention_backward_flash(par, dqkv, dout, qkv, out, row_max, row_inv, B, T, C, NH, scratch);
    else
        attention_backward_blas(par, dqkv, dout, qkv, att, B, T, C, NH, scratch);
}

}  // namespace trainopt
