// The score history on the command line (scoring/history_db.h, docs/ci.md):
//   trainopt score|ci ... --history DB [--commit REV]   append the finished score
//   trainopt history add DB REPORT.json [--commit REV] [--machine M]
//   trainopt history DB [--suite S] [--task T] [--submission X] [--md F] [--html F]
#pragma once

#include <string>

#include "contract/result.h"
#include "scoring/report.h"

namespace trainopt {

// The commit a run is recorded with: `commit` when given, otherwise `git describe --always
// --dirty` of the trainopt checkout this trainopt was built from (where submissions/ lives), or
// "unknown" when that is no git checkout (an install) or git fails.
std::string run_commit(const std::string& commit);

// Appends a finished report to the history at db_path (created when absent) and says so on
// stdout. Fails for an INCOMPLETE report.
Status record_in_history(const std::string& db_path, const ScoreReport& report,
                         const std::string& commit, const std::string& machine = "");

struct HistoryAddCommand {
    std::string db;
    std::string report;
    std::string commit;   // empty: "unknown" (the checkout now need not be the one scored)
    std::string machine;  // empty: the report's machine identity
};
int run_history_add(const HistoryAddCommand& command);

struct HistoryShowCommand {
    std::string db;
    std::string suite, task, submission;  // filters; empty: all
    std::string markdown_path, html_path;
};
// Prints the series with their change points; exit code 0, or 1 when the database cannot be read
// or a file cannot be written.
int run_history_show(const HistoryShowCommand& command);

}  // namespace trainopt
