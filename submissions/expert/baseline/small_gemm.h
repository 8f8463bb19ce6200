// Register-blocked products for the small shapes of this model (AVX-512 where the build machine
// has it, else AVX2/FMA), called with no library call overhead. OpenBLAS is the better choice
// for large products; for products of a few thousand to a few million FLOPs (attention heads of
// 8-16 channels, the small task's 64x32x96 layers, the matmul task's 128x576x192 ones on
// AVX-512) its per-call set-up and packing cost more than the arithmetic.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "fast_math.h"

namespace trainopt::fast {

// C(MR, 8*NV) = alpha * A(MR, K) B(K, 8*NV)  (+ C when accumulate)
// A(i, k) = A[i * ars + k * acs] (any strides: broadcast one element at a time);
// B is row-major with leading dimension ldb.
template <int MR, int NV>
inline void gemm_tile(int K, const float* A, ptrdiff_t ars, ptrdiff_t acs, const float* B,
                      ptrdiff_t ldb, float* C, ptrdiff_t ldc, float alpha, bool accumulate) {
    __m256 acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = _mm256_loadu_ps(B + k * ldb + 8 * v);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const __m256 a = _mm256_broadcast_ss(A + i * ars + k * acs);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(a, b[v], acc[i][v]);
        }
    }
    const __m256 scale = _mm256_set1_ps(alpha);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            float* c = C + i * ldc + 8 * v;
            __m256 r = alpha == 1.0f ? acc[i][v] : _mm256_mul_ps(acc[i][v], scale);
            if (accumulate) r = _mm256_add_ps(r, _mm256_loadu_ps(c));
            _mm256_storeu_ps(c, r);
        }
    }
}

// Rows i0..i0+m (m < MR) of one column panel.
template <int NV>
inline void gemm_tail(int m, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs, const float* B,
                      ptrdiff_t ldb, float* C, ptrdiff_t ldc, float alpha, bool accumulate) {
    switch (m) {
        case 1:
            gemm_tile<1, NV>(K, A, ars, acs, B, ldb, C, ldc, alpha, accumulate);
            break;
        case 2:
            gemm_tile<2, NV>(K, A, ars, acs, B, ldb, C, ldc, alpha, accumulate);
            break;
        case 3:
            gemm_tile<3, NV>(K, A, ars, acs, B, ldb, C, ldc, alpha, accumulate);
            break;
        case 4:
            gemm_tile<4, NV>(K, A, ars, acs, B, ldb, C, ldc, alpha, accumulate);
            break;
        case 5:
            gemm_tile<5, NV>(K, A, ars, acs, B, ldb, C, ldc, alpha, accumulate);
            break;
        case 6:
            gemm_tile<6, NV>(K, A, ars, acs, B, ldb, C, ldc, alpha, accumulate);
            break;
        case 7:
            gemm_tile<7, NV>(K, A, ars, acs, B, ldb, C, ldc, alpha, accumulate);
            break;
        default:
            break;
    }
}

// One column panel of 8*NV columns, all M rows, MR rows at a time (the panel of B stays in L1).
template <int MR, int NV>
inline void gemm_panel(int M, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs, const float* B,
                       ptrdiff_t ldb, float* C, ptrdiff_t ldc, float alpha, bool accumulate) {
    int i = 0;
    for (; i + MR <= M; i += MR)
        gemm_tile<MR, NV>(K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc, alpha, accumulate);
    if (i < M)
        gemm_tail<NV>(M - i, K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc, alpha, accumulate);
}

// C(M,N) = alpha * A(M,K) B(K,N)  (+ C when accumulate); N must be a multiple of 8.
// 6x16 tiles (12 accumulators, 8 loads per 12 FMAs; a shape GCC 12 keeps in registers without
// spills), then an 8x8 panel for the last 8 columns. When several row tiles share a panel of B,
// K is cut into chunks of kKChunk so that the panel and the tiles' rows of A stay in L1.
constexpr int kKChunk = 128;

// A panel of B that several row tiles share is first copied to a contiguous buffer: rows of B
// 1 or 2 KB apart (the 256-wide weights, T = 512 activations) map a 128-row panel into 4 or 2
// of L1's 64 sets, so that, unpacked, the panel would be fetched again from L2 for every row
// tile.
template <int NV>
inline const float* pack_panel(const float* B, ptrdiff_t ldb, int kc, float* packed) {
    for (int k = 0; k < kc; k++)
        for (int v = 0; v < NV; v++)
            _mm256_store_ps(packed + (k * NV + v) * 8, _mm256_loadu_ps(B + k * ldb + 8 * v));
    return packed;
}

// The same panel from B stored transposed (Bt(N,K), rows ldbt apart): the layers' weights are
// (out, in), and each panel is transposed here, while it is packed anyway. A transposed copy of
// the weights would have to be rewritten after every update, which on the matmul task costs as
// much as the AdamW pass itself.
template <int NV>
inline const float* pack_panel_transposed(const float* Bt, ptrdiff_t ldbt, int kc, float* packed) {
    transpose(Bt, ldbt, packed, 8 * NV, 8 * NV, kc);
    return packed;
}

#ifdef __AVX512F__
// The same products on AVX-512 (where the build machine has it): 16 columns per vector and 32
// vector registers, so 12x32 tiles (24 accumulators). Columns past N in the last vector of a
// panel are masked off in every load and store. Each C element still sums its K products in
// order, one FMA per k and kKChunk-sized chunks, so the results are bit-identical to the AVX2
// tiles'.
template <int MR, int NV>
inline void gemm_tile16(int K, const float* A, ptrdiff_t ars, ptrdiff_t acs, const float* B,
                        ptrdiff_t ldb, float* C, ptrdiff_t ldc, float alpha, bool accumulate,
                        __mmask16 last) {
    __m512 acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            b[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, B + k * ldb + 16 * v)
                               : _mm512_loadu_ps(B + k * ldb + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            const __m512 a = _mm512_set1_ps(A[i * ars + k * acs]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(a, b[v], acc[i][v]);
        }
    }
    const __m512 scale = _mm512_set1_ps(alpha);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const __mmask16 mask = v == NV - 1 ? last : (__mmask16)0xFFFF;
            float* c = C + i * ldc + 16 * v;
            __m512 r = alpha == 1.0f ? acc[i][v] : _mm512_mul_ps(acc[i][v], scale);
            if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask, c));
            _mm512_mask_storeu_ps(c, mask, r);
        }
    }
}

template <int NV>
inline void gemm_tail16(int m, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs, const float* B,
                        ptrdiff_t ldb, float* C, ptrdiff_t ldc, float alpha, bool accumulate,
                        __mmask16 last) {
#define TRAINOPT_TAIL_CASE(R)                                                        \
    case R:                                                                          \
        gemm_tile16<R, NV>(K, A, ars, acs, B, ldb, C, ldc, alpha, accumulate, last); \
        break;
    switch (m) {
        TRAINOPT_TAIL_CASE(1)
        TRAINOPT_TAIL_CASE(2)
        TRAINOPT_TAIL_CASE(3)
        TRAINOPT_TAIL_CASE(4)
        TRAINOPT_TAIL_CASE(5)
        TRAINOPT_TAIL_CASE(6)
        TRAINOPT_TAIL_CASE(7)
        TRAINOPT_TAIL_CASE(8)
        TRAINOPT_TAIL_CASE(9)
        TRAINOPT_TAIL_CASE(10)
        TRAINOPT_TAIL_CASE(11)
        default:
            break;
    }
#undef TRAINOPT_TAIL_CASE
}

template <int MR, int NV>
inline void gemm_panel16(int M, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs, const float* B,
                         ptrdiff_t ldb, float* C, ptrdiff_t ldc, float alpha, bool accumulate,
                         __mmask16 last) {
    int i = 0;
    for (; i + MR <= M; i += MR)
        gemm_tile16<MR, NV>(K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc, alpha, accumulate,
                            last);
    if (i < M)
        gemm_tail16<NV>(M - i, K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc, alpha,
                        accumulate, last);
}

// Copies a kc x width panel of B (width <= 16 * NV) to a contiguous buffer of rows 16 * NV
// wide, zero-padded.
template <int NV>
inline const float* pack_panel16(const float* B, ptrdiff_t ldb, int kc, int width, float* packed) {
    for (int k = 0; k < kc; k++)
        for (int v = 0; v < NV; v++)
            _mm512_store_ps(
                packed + (k * NV + v) * 16,
                _mm512_maskz_loadu_ps(lanes16(std::max(0, width - 16 * v)), B + k * ldb + 16 * v));
    return packed;
}

template <int NV>
inline const float* pack_panel16_transposed(const float* Bt, ptrdiff_t ldbt, int kc, int width,
                                            float* packed) {
    transpose(Bt, ldbt, packed, 16 * NV, width, kc);  // lanes past width stay unread (masked)
    return packed;
}

// Panels of B (kc x 16 * NV, packed when several row tiles share them or B is transposed) times all
// M rows of A, columns [j0, N) of C in steps of 16 * NV; MR x (16 * NV) tiles.
template <int MR, int NV>
inline void gemm_panels16(int M, int N, int j0, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs,
                          const float* B, ptrdiff_t ldb, bool b_transposed, float* C, ptrdiff_t ldc,
                          float alpha, bool accumulate) {
    const bool pack = M > MR || b_transposed;
    const int chunk = pack ? kKChunk : K;
    alignas(64) float packed[kKChunk * 16 * NV];
    for (int k0 = 0; k0 < K; k0 += chunk) {
        const int kc = K - k0 < chunk ? K - k0 : chunk;
        const float* a = A + k0 * acs;
        for (int j = j0; j < N; j += 16 * NV) {
            const int width = std::min(N - j, 16 * NV);
            const float* panel =
                b_transposed ? pack_panel16_transposed<NV>(B + j * ldb + k0, ldb, kc, width, packed)
                : pack       ? pack_panel16<NV>(B + k0 * ldb + j, ldb, kc, width, packed)
                             : B + k0 * ldb + j;
            const ptrdiff_t ld = pack ? 16 * NV : ldb;
            const bool acc = accumulate || k0 > 0;
            const __mmask16 last = lanes16(width - 16 * (NV - 1));
            if (width > 16 * (NV - 1))
                gemm_panel16<MR, NV>(M, kc, a, ars, acs, panel, ld, C + j, ldc, alpha, acc, last);
            else  // a last panel of at most 16 columns
                gemm_panel16<MR, 1>(M, kc, a, ars, acs, panel, ld, C + j, ldc, alpha, acc,
                                    lanes16(width));
        }
    }
}

// 64-column panels of 6x64 tiles (24 accumulators; per k 4 loads and 6 broadcasts) while 64
// columns are left, then 32-column panels of 12x32 tiles.
inline void gemm_small16(int M, int N, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs,
                         const float* B, ptrdiff_t ldb, bool b_transposed, float* C, ptrdiff_t ldc,
                         float alpha, bool accumulate) {
    const int wide = N / 64 * 64;
    if (wide > 0)
        gemm_panels16<6, 4>(M, wide, 0, K, A, ars, acs, B, ldb, b_transposed, C, ldc, alpha,
                            accumulate);
    if (wide < N)
        gemm_panels16<12, 2>(M, N, wide, K, A, ars, acs, B, ldb, b_transposed, C, ldc, alpha,
                             accumulate);
}
#endif

inline void gemm_small8(int M, int N, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs,
                        const float* B, ptrdiff_t ldb, bool b_transposed, float* C, ptrdiff_t ldc,
                        float alpha, bool accumulate) {
    const bool pack = M > 8 || b_transposed;  // several row tiles per panel, or B transposed
    const int chunk = pack ? kKChunk : K;
    alignas(32) float packed[kKChunk * 16];
    for (int k0 = 0; k0 < K; k0 += chunk) {
        const int kc = K - k0 < chunk ? K - k0 : chunk;
        const float* a = A + k0 * acs;
        const bool acc = accumulate || k0 > 0;
        int j = 0;
        for (; j + 16 <= N; j += 16) {
            const float* panel = b_transposed
                                     ? pack_panel_transposed<2>(B + j * ldb + k0, ldb, kc, packed)
                                 : pack ? pack_panel<2>(B + k0 * ldb + j, ldb, kc, packed)
                                        : B + k0 * ldb + j;
            gemm_panel<6, 2>(M, kc, a, ars, acs, panel, pack ? 16 : ldb, C + j, ldc, alpha, acc);
        }
        if (j < N) {
            const float* panel = b_transposed
                                     ? pack_panel_transposed<1>(B + j * ldb + k0, ldb, kc, packed)
                                 : pack ? pack_panel<1>(B + k0 * ldb + j, ldb, kc, packed)
                                        : B + k0 * ldb + j;
            gemm_panel<8, 1>(M, kc, a, ars, acs, panel, pack ? 8 : ldb, C + j, ldc, alpha, acc);
        }
    }
}

inline void gemm_small(int M, int N, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs,
                       const float* B, ptrdiff_t ldb, float* C, ptrdiff_t ldc, float alpha,
                       bool accumulate) {
#ifdef __AVX512F__
    gemm_small16(M, N, K, A, ars, acs, B, ldb, false, C, ldc, alpha, accumulate);
#else
    gemm_small8(M, N, K, A, ars, acs, B, ldb, false, C, ldc, alpha, accumulate);
#endif
}

// C(M,N) = alpha * A(M,K) Bt(N,K)^T  (+ C when accumulate): B given transposed, rows ldbt
// apart, as a layer's (out, in) weights are; K must be a multiple of 8.
inline void gemm_small_bt(int M, int N, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs,
                          const float* Bt, ptrdiff_t ldbt, float* C, ptrdiff_t ldc, float alpha,
                          bool accumulate) {
#ifdef __AVX512F__
    gemm_small16(M, N, K, A, ars, acs, Bt, ldbt, true, C, ldc, alpha, accumulate);
#else
    gemm_small8(M, N, K, A, ars, acs, Bt, ldbt, true, C, ldc, alpha, accumulate);
#endif
}

inline int round_up8(int n) {
    return (n + 7) / 8 * 8;
}

}  // namespace trainopt::fast
