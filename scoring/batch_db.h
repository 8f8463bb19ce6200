// The state of `trainopt batch` in the history database (schema version 2): the batch (its
// output directory, suite, seed, re-timing interval), its submissions in order with the history
// run each finished one became, and the baseline's calibrations. What is in the database is
// what an interrupted batch resumes from; docs/batch.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "contract/result.h"
#include "scoring/history_db.h"

namespace trainopt {

struct BatchEntry {
    int position = 0;         // 0-based, the order submissions are scored in
    std::string submission;   // the path as given (untrusted text)
    std::string name;         // the stem of its report files, unique within the batch
    int64_t run_id = 0;       // its row in `runs` once its report is final; 0: still to score
    std::string report_path;  // its HTML report, once final
};

struct BatchRecord {
    int64_t id = 0;
    std::string out_dir;  // the batch's key: where its reports go
    std::string created_at;
    std::string suite;
    int reps = 0;
    uint64_t seed = 0;  // drawn at the start of the batch, never shown to a submission
    int retime_every = 0;
    std::string machine;
    bool finished = false;
    std::vector<BatchEntry> entries;
};

// One timed baseline run of a calibration.
struct CalibrationSample {
    std::string task;
    int rep = 0;
    double at_unix = 0;  // when it ran, the harness's wall clock
    double seconds = 0;  // its wall time, from the parent
};

// The batch whose reports go to `out_dir`, with its submissions; nullopt when there is none.
Result<std::optional<BatchRecord>> find_batch(HistoryDb& db, const std::string& out_dir);

// Stores a new batch and its submissions in one transaction; returns its id.
Result<int64_t> create_batch(HistoryDb& db, const BatchRecord& batch);

// Stores a calibration's samples under the next free ordinal of the batch; returns it.
Result<int> record_calibration(HistoryDb& db, int64_t batch_id,
                               const std::vector<CalibrationSample>& samples);

// A batch's calibrations, by ordinal, each with its samples.
Result<std::vector<std::vector<CalibrationSample>>> read_calibrations(HistoryDb& db,
                                                                      int64_t batch_id);

// A submission's final result: the history run and the batch's entry in one transaction, so a
// resumed batch never scores it twice nor loses it. Returns the run's id.
Result<int64_t> record_batch_result(HistoryDb& db, int64_t batch_id, int position,
                                    const HistoryRun& run, const std::string& report_json,
                                    const std::string& report_path);

Status finish_batch(HistoryDb& db, int64_t batch_id);

// One row of the leaderboard: a batch's scored submission with its history run.
struct LeaderboardEntry {
    int position = 0;
    std::string submission;
    std::string report_path;
    HistoryRun run;
};

struct Leaderboard {
    std::string out_dir;  // the batch's
    std::string suite;
    std::string created_at;
    bool finished = false;
    int pending = 0;  // submissions not scored yet
    std::vector<LeaderboardEntry> entries;
};

// The batch keyed by `out_dir`, or the most recently created one when empty.
Result<Leaderboard> read_leaderboard(HistoryDb& db, const std::string& out_dir);

}  // namespace trainopt
