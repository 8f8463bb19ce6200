#include "harness/compare_command.h"

#include <cstdio>

#include "harness/cli_error.h"
#include "scoring/compare.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

// The exit codes of main.cpp (docs/scoring.md).
constexpr int kExitInvalid = 3;
constexpr int kExitRegression = 4;

}  // namespace

Status check_comparable(const ScoreReport& previous, const std::string& previous_path,
                        const ScoreReport& current) {
    const LabelledReport a{"the previous report (" + previous_path + ")", &previous};
    const LabelledReport b{"this run", &current};
    const std::vector<std::string> problems = comparability_problems(a, b);
    if (problems.empty()) return {};
    return failure(comparability_message(a, b, problems));
}

int run_compare(const CompareCommand& c) {
    Result<ScoreReport> previous = load_report(c.previous);
    if (!previous) return fail(previous.error());
    Result<ScoreReport> current = load_report(c.current);
    if (!current) return fail(current.error());
    const LabelledReport a{"A (" + c.previous + ")", &*previous};
    const LabelledReport b{"B (" + c.current + ")", &*current};
    const std::vector<std::string> problems = comparability_problems(a, b);
    if (!problems.empty()) {
        fail(comparability_message(a, b, problems));
        // as in ci: a new report that failed verification is the submission's verdict
        const bool b_invalid =
            current->verdict == Verdict::invalid || current->verdict == Verdict::rejected;
        return b_invalid ? kExitInvalid : kExitError;
    }
    ReportComparison comparison{a, b, c.max_slowdown,
                                compare_reports(*previous, *current, c.max_slowdown)};
    const std::string markdown = comparison_to_markdown(comparison);
    if (!c.markdown_path.empty()) {
        if (Status written = write_file_atomic(c.markdown_path, markdown); !written)
            return fail(written.error());
    }
    if (!c.json_path.empty()) {
        const std::string json = comparison_to_json(comparison)
                                     .dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        if (Status written = write_file_atomic(c.json_path, json + "\n"); !written)
            return fail(written.error());
    }
    printf("%s", terminal_safe(markdown).c_str());
    return comparison.result.regression ? kExitRegression : 0;
}

}  // namespace trainopt
