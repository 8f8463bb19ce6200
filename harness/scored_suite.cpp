#include "harness/scored_suite.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "harness/evaluation.h"
#include "harness/suite_generator.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

// Narrows the suite to the tasks named by --task (each once, in the order given).
Status select_tasks(const std::vector<std::string>& names, SuiteToScore& scored) {
    Suite& suite = scored.suite;
    std::vector<TaskSpec> chosen;
    std::vector<uint64_t> chosen_offsets;
    for (const std::string& name : names) {
        auto it = std::find_if(suite.tasks.begin(), suite.tasks.end(),
                               [&](const TaskSpec& t) { return t.name == name; });
        if (it == suite.tasks.end())
            return failure("--task " + terminal_safe_line(name) + ": no such task in suite " +
                           suite.name);
        if (std::find_if(chosen.begin(), chosen.end(),
                         [&](const TaskSpec& t) { return t.name == name; }) == chosen.end()) {
            chosen.push_back(*it);
            chosen_offsets.push_back((uint64_t)(it - suite.tasks.begin()));
        }
    }
    if (chosen.size() < suite.tasks.size()) {
        std::string listed;
        for (const TaskSpec& t : chosen) listed += (listed.empty() ? "" : ", ") + t.name;
        scored.warnings.push_back("PARTIAL SUITE: only " + listed + " of suite " + suite.name +
                                  " were scored; this is not an official score.");
        suite.name += " (part: " + listed + ")";
    }
    suite.tasks = std::move(chosen);
    scored.seed_offsets = std::move(chosen_offsets);
    return {};
}

// A generated suite (harness/suite_generator.h): drawn from its seed, sized to this machine and
// calibrated now, its task files under the work directory and kept for the report.
Status add_generated_suite(const GeneratedSuiteName& name, const ScoreOptions& options,
                           const std::string& workdir, uint64_t seed_offset,
                           const std::string& suite_label, SuiteToScore& scored) {
    GenerateOptions generate;
    generate.name = name;
    if (!options.generator_ranges.empty()) {
        Result<GeneratorRanges> ranges = load_generator_ranges(options.generator_ranges);
        if (!ranges) return failure(ranges.error());
        generate.ranges = *ranges;
    }
    generate.out_dir = workdir + "/generated";
    generate.progress = [](const std::string& line) { spdlog::info("generating: {}", line); };
    spdlog::info("generating suite {}: drawing, sizing and calibrating {} tasks",
                 generated_suite_name(name), name.tasks);
    Result<GeneratedSuite> generated = generate_suite(generate);
    if (!generated) return failure(generated.error());
    scored.generated_suite = generated->suite.name;
    for (size_t i = 0; i < generated->suite.tasks.size(); i++) {
        scored.suite.tasks.push_back(generated->suite.tasks[i]);
        scored.seed_offsets.push_back(seed_offset + i);
        scored.task_suites.push_back(suite_label);
        scored.generated_tasks.push_back({generated->tasks[i].name, generated->tasks[i].toml});
    }
    return {};
}

}  // namespace

Result<GeneratedSuiteName> companion_suite_name(const std::string& spec) {
    if (is_generated_suite_name(spec)) return parse_generated_suite_name(spec);
    const std::string usage =
        "--with-generated takes a number of tasks (1 to 64) or "
        "generated:SEED[:N], not '" +
        terminal_safe_line(spec) + "'";
    if (spec.empty() || spec.size() > 2 ||
        spec.find_first_not_of("0123456789") != std::string::npos)
        return failure(usage);
    GeneratedSuiteName name;
    name.tasks = std::stoi(spec);
    if (name.tasks < 1 || name.tasks > 64) return failure(usage);
    name.seed = random_seed();  // drawn now: no submission could have seen these shapes
    return name;
}

Result<SuiteToScore> load_suite_to_score(const TrustedInputs& trusted, const ScoreOptions& options,
                                         const std::string& workdir) {
    SuiteToScore scored;
    if (is_generated_suite_name(options.suite)) {
        if (!options.with_generated.empty())
            return failure(
                "--with-generated scores a generated suite next to a built-in one; "
                "--suite is already generated");
        Result<GeneratedSuiteName> name = parse_generated_suite_name(options.suite);
        if (!name) return failure(name.error());
        if (Status added = add_generated_suite(*name, options, workdir, 0, "", scored); !added)
            return failure(added.error());
        scored.suite.name = scored.generated_suite;
    } else {
        Result<ScoringSuite> loaded = load_scoring_suite(trusted, options.suite);
        if (!loaded) return failure(loaded.error());
        scored.suite = std::move(loaded->suite);
        if (!loaded->builtin) {
            scored.warnings.push_back("CUSTOM SUITE: the tasks were read from " +
                                      fs::absolute(options.suite).string() +
                                      ", not from the suites built into trainopt; this is not an "
                                      "official score.");
            scored.suite.name += " (not built in)";
        }
        for (size_t i = 0; i < scored.suite.tasks.size(); i++) scored.seed_offsets.push_back(i);
        scored.task_suites.assign(scored.suite.tasks.size(), "");
    }
    if (!options.only_tasks.empty()) {
        if (!options.with_generated.empty())
            return failure(
                "--task and --with-generated do not go together: a score of two "
                "suites covers both whole");
        if (Status selected = select_tasks(options.only_tasks, scored); !selected)
            return failure(selected.error());
        scored.task_suites.assign(scored.suite.tasks.size(), "");
    }
    if (!options.with_generated.empty()) {
        Result<GeneratedSuiteName> name = companion_suite_name(options.with_generated);
        if (!name) return failure(name.error());
        const std::string first = scored.suite.name;
        const std::string second = generated_suite_name(*name);
        for (const TaskSpec& t : scored.suite.tasks) {
            if (t.name.rfind("gen-", 0) == 0)
                return failure("suite " + first + " has a task named " + t.name +
                               ", as a generated task would be; rename it to score it next to "
                               "a generated suite");
        }
        scored.task_suites.assign(scored.suite.tasks.size(), first);
        if (Status added =
                add_generated_suite(*name, options, workdir, kGeneratedSeedOffset, second, scored);
            !added)
            return failure(added.error());
        scored.suites = TwoSuiteReport{first, second, {}};
        scored.suite.name = first + " + " + second;
    }
    return scored;
}

}  // namespace trainopt
