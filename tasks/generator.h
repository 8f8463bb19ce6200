// Generated suites (docs/task-format.md, "Generated suites"): tasks drawn from a seed, so a
// score can measure optimization on shapes nobody tuned for. This part is pure: the ranges, the
// suite's name, the draw of a task's shape from (seed, task index, attempt) and its task file.
// Sizing a task to a baseline time and calibrating it need the reference model: harness/
// suite_generator.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "contract/result.h"
#include "tasks/task_spec.h"

namespace trainopt {

struct IntRange {
    int low = 0;
    int high = 0;  // inclusive
};

// What a generated task may be; every draw stays within these. The defaults cover every hot
// spot of the default suite: small and wide vocabularies, short and long contexts, narrow and
// wide heads, one to four layers, tiny and larger batches.
struct GeneratorRanges {
    IntRange vocab_size{32, 8192};  // log-uniform
    IntRange context{8, 384};       // log-uniform
    std::vector<int> head_sizes{8, 12, 16, 24, 32, 48, 64};
    IntRange heads{1, 8};
    IntRange d_model{16, 384};  // heads x head size is redrawn until within
    IntRange layers{1, 4};
    IntRange batch{1, 8};
    IntRange steps{8, 2000};      // after sizing to the target time
    double target_seconds = 10;   // the naive baseline's time per task on the scoring machine
    double max_step_gflop = 2.0;  // shapes above are redrawn before anything is timed
    float lr = 1e-3f;
};

// Reads the [generator] section of a TOML file over the defaults; every key is optional.
Result<GeneratorRanges> load_generator_ranges(const std::string& path);

// "generated:SEED" or "generated:SEED:N" (N tasks, default kDefaultGeneratedTasks).
constexpr int kDefaultGeneratedTasks = 8;
struct GeneratedSuiteName {
    uint64_t seed = 0;
    int tasks = kDefaultGeneratedTasks;
};
bool is_generated_suite_name(const std::string& name);
Result<GeneratedSuiteName> parse_generated_suite_name(const std::string& name);
std::string generated_suite_name(const GeneratedSuiteName& name);

// A task's shape, data and schedule but its step count: the draw number `attempt` of task
// `index` of the suite of `seed` (attempt > 0 after a draw was refused).
struct DrawnTask {
    std::string name;  // "gen-<index>"
    ModelSpec model;
    DataSpec data;
    int batch = 1;
    float lr = 1e-3f;
    int attempt = 0;
};
DrawnTask draw_task(uint64_t seed, int index, int attempt, const GeneratorRanges& ranges);

// The task file of a drawn task trained for `steps` steps and verified as `verify` says with
// `tolerances`; load_task_text reads it back to the same task.
std::string generated_task_toml(const DrawnTask& task, int steps, const VerifySpec& verify,
                                const Tolerances& tolerances, const std::string& provenance);

}  // namespace trainopt
