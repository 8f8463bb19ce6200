// measure_peak: measures the machine's peaks once and prints them as one JSON line, for
// scripts/measure-peak-margin.sh (the spread of the FMA ceiling decides the backstop's margin).
//
//   measure_peak [--threads N] [--no-sgemm]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "scoring/machine_peak.h"

int main(int argc, char** argv) {
    int threads = (int)std::thread::hardware_concurrency();
    bool sgemm = true;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "--no-sgemm") == 0) {
            sgemm = false;
        } else {
            std::fprintf(stderr, "usage: measure_peak [--threads N] [--no-sgemm]\n");
            return 2;
        }
    }
    const trainopt::FmaCeiling c = trainopt::measure_fma_ceiling(threads);
    const double sgemm_gflops = sgemm ? trainopt::measure_peak_gflops(threads) : 0.0;
    std::printf(
        "{\"fma_ceiling_gflops\": %.2f, \"isa\": \"%s\", \"threads\": %d, \"trials\": %d, "
        "\"seconds\": %.3f, \"not_a_ceiling\": \"%s\", \"sgemm_gflops\": %.2f}\n",
        c.gflops, c.isa.c_str(), c.threads, c.trials, c.seconds, c.not_a_ceiling.c_str(),
        sgemm_gflops);
    return 0;
}
