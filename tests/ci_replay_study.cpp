// The paired `trainopt ci` test replayed on measured timings (docs/ci.md, "Measured on this
// machine"): how often would an unchanged version be called a REGRESSION, and how often is a
// slowdown of s found, and how fast?
//
// The input is the JSON reports of real `trainopt ci` runs that compared a version with itself
// (best run with a tiny allowance, `--max-slowdown 0.001`, so that they rarely stop early and
// give long series). Each of their rounds holds, per task, the measured wall times of one pair
// and the round's own wall time. A replayed run picks one report and a random first round, and
// walks its rounds in order (wrapping around), so rounds keep the drift and the correlation they
// had on the machine. An injected slowdown s multiplies every current time by (1 + s): each
// pair's log-ratio grows by log(1 + s) and the round lasts s times the current runs longer.
// The verdict is the test's own code (scoring/sequential.h) at trainopt ci's looks and budget
// (harness/paired_ci.cpp): a scheduled look that decides ends the run; otherwise no round starts
// that would end past the budget, and the last look stands.
//
// Not part of ctest: a measuring instrument.
//   ci_replay_study [--runs N] [--budget S] [--max-slowdown P] [--slowdowns 0,0.05,...] JSON...
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "scoring/sequential.h"
#include "scoring/stats.h"

using namespace trainopt;

namespace {

struct MeasuredRound {
    std::vector<double> log_ratios;  // per task: log(current / previous)
    double current_seconds = 0;      // the current version's share of the round
    double seconds = 0;              // the round's wall time
};

struct MeasuredRun {
    std::string path;
    double setup_seconds = 0;
    std::vector<MeasuredRound> rounds;  // rounds[0] has the baseline and the verification
};

bool read_run(const std::string& path, MeasuredRun& run) {
    std::ifstream in(path);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("tasks") || !j.contains("round_seconds")) {
        fprintf(stderr, "%s: not a trainopt ci report with round_seconds\n", path.c_str());
        return false;
    }
    run.path = path;
    run.setup_seconds = j.value("setup_seconds", 0.0);
    const std::vector<double> round_seconds = j["round_seconds"].get<std::vector<double>>();
    for (size_t r = 0; r < round_seconds.size(); r++) {
        MeasuredRound round;
        round.seconds = round_seconds[r];
        for (const nlohmann::json& task : j["tasks"]) {
            const std::vector<double> previous =
                task["previous_seconds"].get<std::vector<double>>();
            const std::vector<double> current = task["current_seconds"].get<std::vector<double>>();
            if (r >= previous.size() || r >= current.size()) {
                fprintf(stderr, "%s: round %zu misses a task's times\n", path.c_str(), r + 1);
                return false;
            }
            round.log_ratios.push_back(std::log(current[r] / previous[r]));
            round.current_seconds += current[r];
        }
        run.rounds.push_back(round);
    }
    if (run.rounds.size() < 2) {
        fprintf(stderr, "%s: fewer than two rounds\n", path.c_str());
        return false;
    }
    return true;
}

struct ReplayedRun {
    CiVerdict verdict = CiVerdict::undecided;
    int rounds = 0;
    double seconds = 0;
};

// One `trainopt ci` run replayed on `run`'s rounds from `first`, with slowdown s injected.
ReplayedRun replay(const MeasuredRun& run, size_t first, double slowdown,
                   const SequentialOptions& test, double budget_seconds) {
    const std::vector<int> looks = look_schedule(test);
    std::vector<std::vector<double>> log_ratios;
    double elapsed = run.setup_seconds, timed_rounds_seconds = 0;
    SequentialLook look;
    for (int round = 0; round < test.max_rounds; round++) {
        const double mean_round = round > 1 ? timed_rounds_seconds / (round - 1) : 0;
        if (round > 0 && elapsed + mean_round > budget_seconds) break;
        // the first round is always the measured first round: it has the baseline
        const MeasuredRound& measured =
            round == 0 ? run.rounds[0]
                       : run.rounds[1 + (first + round - 1) % (run.rounds.size() - 1)];
        std::vector<double> ratios = measured.log_ratios;
        for (double& r : ratios) r += std::log1p(slowdown);
        const double seconds = measured.seconds + slowdown * measured.current_seconds;
        elapsed += seconds;
        if (round > 0) timed_rounds_seconds += seconds;
        log_ratios.push_back(ratios);
        look = look_at_rounds(log_ratios, test);
        const bool scheduled = std::find(looks.begin(), looks.end(), round + 1) != looks.end();
        if (scheduled && look.verdict != CiVerdict::undecided) break;
    }
    return {look.verdict, (int)log_ratios.size(), elapsed};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"replays trainopt ci's sequential test on measured rounds"};
    int runs = 2000;
    double budget_seconds = 300;
    std::vector<double> slowdowns = {0, 0.05, 0.10, 0.20};
    SequentialOptions test;
    std::vector<std::string> paths;
    uint64_t seed = 1;
    app.add_option("--runs", runs, "replayed runs per slowdown")->check(CLI::Range(1, 1000000));
    app.add_option("--budget", budget_seconds, "trainopt ci --budget");
    app.add_option("--max-slowdown", test.max_slowdown, "trainopt ci --max-slowdown");
    app.add_option("--alpha", test.alpha, "trainopt ci --alpha");
    app.add_option("--max-rounds", test.max_rounds, "trainopt ci --max-rounds");
    app.add_option("--slowdowns", slowdowns, "injected slowdowns, comma-separated")
        ->delimiter(',')
        ->allow_extra_args(false);
    app.add_option("--seed", seed, "the replay's random seed");
    app.add_option("reports", paths, "JSON reports of trainopt ci VERSION --previous VERSION")
        ->required();
    CLI11_PARSE(app, argc, argv);

    std::vector<MeasuredRun> measured;
    std::vector<std::vector<double>> all_rounds;  // every measured round's log-ratios, pooled
    for (const std::string& path : paths) {
        MeasuredRun run;
        if (!read_run(path, run)) return 1;
        for (const MeasuredRound& r : run.rounds) all_rounds.push_back(r.log_ratios);
        measured.push_back(run);
    }
    // the suite's mean log-ratio per round and its spread, as the test computes them
    const PairedEstimate pooled = look_at_rounds(all_rounds, test).suite;
    printf("%zu measured runs, %zu rounds; suite log-ratio per round: mean %+.4f, sd %.4f\n",
           measured.size(), all_rounds.size(), pooled.mean, pooled.spread);
    printf("allowance %.1f%%, alpha %.3f, budget %.0f s, up to %d rounds, %d replays each\n\n",
           test.max_slowdown * 100, test.alpha, budget_seconds, test.max_rounds, runs);
    printf(
        "| injected slowdown | REGRESSION | NO REGRESSION | UNDECIDED | median rounds | median s "
        "| 90th percentile s |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    std::mt19937_64 rng(seed);
    for (double slowdown : slowdowns) {
        int verdicts[3] = {0, 0, 0};
        std::vector<double> seconds, round_counts;
        for (int k = 0; k < runs; k++) {
            const MeasuredRun& run = measured[rng() % measured.size()];
            const ReplayedRun r =
                replay(run, rng() % (run.rounds.size() - 1), slowdown, test, budget_seconds);
            verdicts[(int)r.verdict]++;
            seconds.push_back(r.seconds);
            round_counts.push_back(r.rounds);
        }
        printf("| %.0f%% | %.1f%% | %.1f%% | %.1f%% | %.0f | %.0f | %.0f |\n", slowdown * 100,
               100.0 * verdicts[(int)CiVerdict::regression] / runs,
               100.0 * verdicts[(int)CiVerdict::no_regression] / runs,
               100.0 * verdicts[(int)CiVerdict::undecided] / runs, median(round_counts),
               median(seconds), percentile(seconds, 90));
    }
    return 0;
}
