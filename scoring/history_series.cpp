#include "scoring/history_series.h"

#include <cmath>
#include <map>
#include <tuple>

namespace trainopt {

namespace {

// Looks for change points among the valid points and maps their indices back onto all points.
void find_change_points(HistorySeries& series, const ChangePointOptions& options) {
    if (series.spec_hash == kUnknownHash) {
        series.not_analysed = "the task spec hash is unknown (runs from before spec hashes)";
        return;
    }
    if (series.machine == kUnknownHash) {
        series.not_analysed = "the machine is unknown (runs from before machine identities)";
        return;
    }
    std::vector<double> values;
    std::vector<size_t> at;  // index in points of each value
    for (size_t i = 0; i < series.points.size(); i++) {
        if (!series.points[i].valid) continue;
        values.push_back(series.points[i].speedup);
        at.push_back(i);
    }
    for (ChangePoint cp : e_divisive_change_points(values, options)) {
        cp.index = at[cp.index];
        series.change_points.push_back(cp);
    }
}

}  // namespace

std::vector<HistorySeries> history_series(const std::vector<HistoryRun>& runs,
                                          const ChangePointOptions& options) {
    using Key = std::tuple<std::string, std::string, std::string, std::string>;
    std::map<Key, HistorySeries> by_key;
    for (const HistoryRun& run : runs) {
        for (const HistoryTaskResult& t : run.tasks) {
            HistorySeries& s = by_key[{run.submission, t.task, run.machine, t.spec_hash}];
            s.submission = run.submission;
            s.task = t.task;
            s.spec_hash = t.spec_hash;
            s.machine = run.machine;
            HistoryPoint p;
            p.run_id = run.id;
            p.created_at = run.created_at;
            p.commit = run.commit;
            p.speedup = t.speedup;
            p.speedup_ci = t.speedup_ci;
            p.submission_median_seconds = t.submission_median_seconds;
            p.baseline_median_seconds = t.baseline_median_seconds;
            // the database is untrusted text too: only a finite positive speedup is a value
            p.valid = t.valid && std::isfinite(t.speedup) && t.speedup > 0;
            s.points.push_back(p);
        }
    }
    std::vector<HistorySeries> out;
    for (auto& [key, series] : by_key) {
        find_change_points(series, options);
        out.push_back(std::move(series));
    }
    return out;
}

}  // namespace trainopt
