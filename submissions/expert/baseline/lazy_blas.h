// OpenBLAS, loaded only if a product actually needs it.
//
// Linked normally, OpenBLAS starts its worker threads when the process loads, and they spin
// (sched_yield) for about 0.1 s waiting for work this trainer never gives them: every sgemm here
// is called single-threaded, inside this trainer's own threads. Most shapes of the default suite
// never call sgemm at all (fast::gemm_small covers them). So the library is opened on first use,
// with OPENBLAS_NUM_THREADS=1 set beforehand (blas::configure, called at the top of main while
// the process is still single-threaded): no spinning threads, no re-exec, no load cost when unused.
#pragma once

#include <cblas.h>

namespace trainopt::blas {

// Must run before any thread starts (it calls setenv).
void configure();

// cblas_sgemm from the dynamically opened library. Exits with a clear error if no BLAS library
// can be opened.
void sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
           float alpha, const float* A, int lda, const float* B, int ldb, float beta, float* C,
           int ldc);

}  // namespace trainopt::blas
