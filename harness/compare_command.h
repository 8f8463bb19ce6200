// `trainopt compare A.json B.json`: two saved reports compared offline, and the refusal it shares
// with `trainopt ci --against` when they may not be compared (scoring/compare.h, docs/ci.md).
#pragma once

#include <string>

#include "contract/result.h"
#include "scoring/report.h"

namespace trainopt {

struct CompareCommand {
    std::string previous;  // A: the reference
    std::string current;   // B: the report judged against it
    double max_slowdown = 0.10;
    std::string markdown_path;  // --md
    std::string json_path;      // --json
};

// Prints the comparison and writes the files asked for. Exit code: 0 no significant regression,
// 4 significant regression, 3 B is INVALID or REJECTED, 1 the reports cannot be compared (either
// unreadable or malformed, A not VALID, B INCOMPLETE, different suites or task specs) or a file
// cannot be written.
int run_compare(const CompareCommand& command);

// The refusal of ci --against: fails, naming every difference, when the previous report (read
// from previous_path) and the current one may not be compared.
Status check_comparable(const ScoreReport& previous, const std::string& previous_path,
                        const ScoreReport& current);

}  // namespace trainopt
