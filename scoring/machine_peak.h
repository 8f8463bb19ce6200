// Measured machine peak: the best fp32 GFLOP/s OpenBLAS sgemm reaches on all allowed cores.
// The speed-of-light bound of a task is its step FLOPs at this rate.
#pragma once

namespace trainopt {

double measure_peak_gflops(int threads);

}  // namespace trainopt
