// Measured machine peaks.
//
// measure_peak_gflops: the best fp32 GFLOP/s OpenBLAS sgemm reaches on all allowed cores. The
// reports' speed-of-light column is a task's step FLOPs at this rate. It is a reference, not a
// ceiling: a hand-written kernel can beat OpenBLAS.
//
// measure_fma_ceiling: the fp32 multiply-add throughput ceiling of the machine, measured with
// register-only FMA loops (independent accumulators, no memory traffic) on every core at once.
// A matmul cannot multiply-add faster than this, so a task's matmul FLOPs at this rate are a
// physical lower bound on its run time: the speed-of-light backstop (docs/scoring.md).
//
// Built as its own library, trainopt_machine (it links BLAS); the reports (trainopt_scoring)
// only record an FmaCeiling as plain data.
#pragma once

#include <string>

namespace trainopt {

double measure_peak_gflops(int threads);

struct FmaCeiling {
    double gflops = 0;   // sum of every thread's best rate while all ran at once (FMA = 2 FLOPs)
    std::string isa;     // vector ISA that reached it: avx512f, avx2+fma, avx, sse2
    int threads = 0;     // threads that ran the loop at once
    int trials = 0;      // timed chunks, all threads and ISAs together
    double seconds = 0;  // wall time the measurement took
    std::string not_a_ceiling;  // non-empty: why gflops is no ceiling here (backstop not applied)
};

// Runs the FMA loop on max(threads, CPUs this process may use) threads at once, for every vector
// ISA the CPU has from AVX2+FMA up (or the widest below that), ~0.2 s per ISA, each thread timing
// short chunks. The ceiling is the sum of the threads' best chunks, for the best ISA. Load from
// other processes lowers a rate, never raises it, and a 0.25 ms chunk often runs unpreempted even
// on a busy machine, so the best chunk shows what a core does when it runs. Counting every core a
// trainer could reach keeps it a ceiling whether or not runs are pinned to `threads` cores (by
// default the two are the same).
FmaCeiling measure_fma_ceiling(int threads);

}  // namespace trainopt
