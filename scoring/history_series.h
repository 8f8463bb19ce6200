// The history as series: one per submission, task, task spec hash and machine, since a speedup
// is only comparable with another of the same task spec measured on the same machine
// (docs/ci.md). Each series with a known spec hash and machine is searched for change points.
#pragma once

#include <string>
#include <vector>

#include "scoring/change_points.h"
#include "scoring/history_db.h"

namespace trainopt {

struct HistoryPoint {
    int64_t run_id = 0;
    std::string created_at;
    std::string commit;
    double speedup = 0;
    Interval speedup_ci;
    double submission_median_seconds = 0;
    double baseline_median_seconds = 0;
    bool valid = false;  // verified, with a positive finite speedup: part of the analysis
};

struct HistorySeries {
    std::string submission;
    std::string task;
    std::string spec_hash;
    std::string machine;
    std::vector<HistoryPoint> points;  // oldest first
    // empty when change points were looked for; otherwise why not (an unknown spec hash or
    // machine: such runs cannot be known to be comparable)
    std::string not_analysed;
    std::vector<ChangePoint> change_points;  // index: into points
};

// Groups the runs' tasks into series (ordered by submission, task, machine, spec hash) and
// looks for change points among each series' valid points.
std::vector<HistorySeries> history_series(const std::vector<HistoryRun>& runs,
                                          const ChangePointOptions& options = {});

}  // namespace trainopt
