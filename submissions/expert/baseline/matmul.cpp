#include "matmul.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstddef>

#include "lazy_blas.h"
#include "parallel_range.h"
#include "small_gemm.h"

namespace trainopt {
namespace {

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

}  // namespace

void linear_forward(bool par, bool tiled, float* out, const float* inp, const float* w,
                    const float* bias, const float* base, int BT, int C, int OC) {
    // base and bias go into out first, and the product accumulates onto them
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
    if (tiled)
        fast::gemm_small_bt(BT, OC, C, inp, C, 1, w, C, out, OC, 1.0f, base || bias);
    else
        gemm(par, false, true, BT, OC, C, inp, C, w, C, (base || bias) ? 1.0f : 0.0f, out, OC);
}

void linear_backward(bool par, bool tiled, float* dinp, float* dw, float* dbias, const float* dout,
                     const float* inp, const float* w, int BT, int C, int OC) {
    if (tiled) {
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

}  // namespace trainopt
