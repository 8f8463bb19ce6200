#include "lazy_blas.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace trainopt::blas {
namespace {

using SgemmFn = void (*)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, int, int, int, float,
                         const float*, int, const float*, int, float, float*, int);

SgemmFn load_sgemm() {
    for (const char* name : {"libopenblas.so.0", "libblas.so.3"}) {
        void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (lib == nullptr) continue;
        if (void* fn = dlsym(lib, "cblas_sgemm")) return reinterpret_cast<SgemmFn>(fn);
    }
    std::fprintf(stderr, "trainopt-train: error: cannot open a BLAS library (libopenblas.so.0)\n");
    std::exit(1);
}

}  // namespace

void configure() {
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
}

void sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
           float alpha, const float* A, int lda, const float* B, int ldb, float beta, float* C,
           int ldc) {
    static std::once_flag once;
    static SgemmFn fn = nullptr;
    std::call_once(once, [] { fn = load_sgemm(); });
    fn(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace trainopt::blas
