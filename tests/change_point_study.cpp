// The change-point detector's error rates on synthetic nightly series (docs/ci.md, "Change
// points"): for each noise level, how often 50 runs of pure noise get a change point (false
// alarms) and how often a 10% step after 20 runs is found, and found within 2 runs of where it
// is. Gaussian relative noise, the default ChangePointOptions. Not part of ctest: a measuring
// instrument. Usage: change_point_study [series per noise level, default 300]
#include <cstdio>
#include <cstdlib>
#include <random>

#include "scoring/change_points.h"

using namespace trainopt;

namespace {

std::vector<double> noisy(int n, double level, double noise, std::mt19937_64& rng) {
    std::normal_distribution<double> z(0, 1);
    std::vector<double> out;
    for (int i = 0; i < n; i++) out.push_back(level * (1 + noise * z(rng)));
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const int series = argc > 1 ? std::atoi(argv[1]) : 300;
    std::mt19937_64 rng(777);
    printf(
        "| noise (sd) | false alarms in 50 runs of noise | 10%% step found | within 2 runs |\n"
        "|---:|---:|---:|---:|\n");
    for (double noise : {0.02, 0.03, 0.05, 0.10}) {
        int false_alarms = 0, found = 0, located = 0;
        for (int k = 0; k < series; k++) {
            ChangePointOptions options;
            options.seed = (uint64_t)k + 1;
            false_alarms += !e_divisive_change_points(noisy(50, 10, noise, rng), options).empty();
            std::vector<double> step = noisy(20, 10, noise, rng);
            const std::vector<double> after = noisy(30, 11, noise, rng);
            step.insert(step.end(), after.begin(), after.end());
            const std::vector<ChangePoint> points = e_divisive_change_points(step, options);
            found += !points.empty();
            for (const ChangePoint& p : points) {
                if (p.index >= 18 && p.index <= 22) {
                    located++;
                    break;
                }
            }
        }
        printf("| %.0f%% | %d / %d | %d / %d | %d / %d |\n", 100 * noise, false_alarms, series,
               found, series, located, series);
    }
    return 0;
}
