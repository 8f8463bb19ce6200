// Comparing two saved reports (`trainopt compare A.json B.json`, and `trainopt ci --against`):
// first whether they may be compared at all, then the regression statistics of regression.h,
// rendered as Markdown and JSON. docs/ci.md describes the rules.
#pragma once

#include <string>
#include <vector>

#include "scoring/regression.h"
#include "scoring/report.h"

namespace trainopt {

// A report with the name it is known by in messages ("A (prev.json)").
struct LabelledReport {
    std::string label;
    const ScoreReport* report = nullptr;
};

// Why two reports cannot be compared: every problem found, each naming the report or the task
// concerned. Empty when they can. Comparable are two complete VALID reports of the same suite:
// equal suite hashes, hence the same tasks with the same spec hashes (each task named once). A
// report without hashes (written before them) cannot be checked and is not comparable. When the
// suites differ, each task that is missing from one report or has another spec hash is named.
std::vector<std::string> comparability_problems(const LabelledReport& previous,
                                                const LabelledReport& current);

// The problems above as one message for an error ("A and B cannot be compared: ...").
std::string comparability_message(const LabelledReport& previous, const LabelledReport& current,
                                  const std::vector<std::string>& problems);

// The comparison of two comparable reports (compare_render.cpp).
struct ReportComparison {
    LabelledReport previous;
    LabelledReport current;
    double max_slowdown = 0;
    RegressionResult result;
};

std::string comparison_to_markdown(const ReportComparison& c);
nlohmann::json comparison_to_json(const ReportComparison& c);

}  // namespace trainopt
