#include "scoring/machine_peak.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace trainopt {

double measure_peak_gflops(int threads) {
    openblas_set_num_threads(threads);
    const int n = 1024;
    std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n, 0.0f);
    double best = 0;
    for (int trial = 0; trial < 20; trial++) {
        auto start = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                    n, 0.0f, c.data(), n);
        std::chrono::duration<double> dt = std::chrono::steady_clock::now() - start;
        best = std::max(best, 2.0 * n * n * n / dt.count() / 1e9);
    }
    return best;
}

}  // namespace trainopt
