// The report of a paired `trainopt ci` run (harness/paired_ci.h): plain data, its JSON form and
// its Markdown rendering. Every string in it may come from a submission's path or log, so the
// Markdown goes through scoring/untrusted_text.h.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scoring/report.h"
#include "scoring/sequential.h"

namespace trainopt {

// One task's paired runs, in round order.
struct CiTaskRuns {
    std::string name;
    std::vector<uint64_t> seeds;
    std::vector<double> previous_seconds;  // wall, measured by the harness
    std::vector<double> current_seconds;
    std::vector<double> previous_cpu_seconds;  // user + system, from wait4
    std::vector<double> current_cpu_seconds;
    std::vector<bool> previous_first;  // the order of each pair
    PairedEstimate wall;               // log(current / previous) at the last look
    PairedEstimate cpu;                // the same for CPU time (advisory)
    bool regressed = false;            // confidently slower than allowed on its own
};

struct CiReport {
    std::string created_at;
    std::string current;  // the submissions as given
    std::string previous;
    BuildInfo current_build;  // how each version's trainer was obtained (built or cached)
    BuildInfo previous_build;
    std::string suite;
    int threads = 0;
    std::string sandbox;
    uint64_t seed = 0;
    SequentialOptions test;
    double budget_seconds = 0;
    double elapsed_seconds = 0;
    double setup_seconds = 0;           // builds and task inputs, before the first round
    std::vector<double> round_seconds;  // wall time of each round; the first has the baseline
    int rounds = 0;
    bool complete = false;  // false while running or when interrupted
    CiVerdict verdict = CiVerdict::undecided;
    std::string explanation;           // one paragraph: why this verdict, and the noise floor
    PairedEstimate suite_wall;         // the rounds' suite means at the last look
    std::vector<std::string> invalid;  // why a version failed verification (no verdict then)
    std::vector<std::string> warnings;
    std::vector<CiTaskRuns> tasks;
};

nlohmann::json ci_report_to_json(const CiReport& report);
std::string ci_report_to_markdown(const CiReport& report);

}  // namespace trainopt
