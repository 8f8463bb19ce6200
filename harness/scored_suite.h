// The suite a score runs: a built-in suite, a directory of task files (flagged as not
// official), or a generated one (harness/suite_generator.h), optionally narrowed by --task, and
// with --with-generated a generated suite scored next to the first.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/score.h"
#include "harness/trusted_inputs.h"
#include "scoring/report.h"
#include "tasks/generator.h"
#include "tasks/task_spec.h"

namespace trainopt {

// The tasks to score, each with its seed offset: the task's index in the whole suite, so a
// partial score reproduces the same tasks' runs of a full one. With a generated suite scored
// next to the first, each task also names its suite.
struct SuiteToScore {
    Suite suite;
    std::vector<uint64_t> seed_offsets;
    std::vector<std::string> task_suites;  // per task; empty strings for a single suite
    std::optional<TwoSuiteReport> suites;
    std::string generated_suite;  // a generated suite's name, when one is scored
    std::vector<GeneratedTaskFile> generated_tasks;
    std::vector<std::string> warnings;  // not an official score: a custom or partial suite
};

// The generated suite's tasks take seed offsets from here, so the first suite's runs are those
// of a score of that suite alone.
constexpr uint64_t kGeneratedSeedOffset = 1000;

// --with-generated's suite: "N" tasks from a seed drawn now, or "generated:SEED[:N]".
Result<GeneratedSuiteName> companion_suite_name(const std::string& spec);

// The suite options.suite names (with --task and --with-generated applied); a generated suite's
// task files go under `workdir`.
Result<SuiteToScore> load_suite_to_score(const TrustedInputs& trusted, const ScoreOptions& options,
                                         const std::string& workdir);

}  // namespace trainopt
