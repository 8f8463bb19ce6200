// The score history: an SQLite database of finished scores, one row per run and one per task of
// it, for `score --history`, `ci --history`, `history add` and `history` (docs/ci.md). The
// database is created when absent, carries its own schema version, runs in WAL mode, and every
// append is one transaction: a reader sees a run with all its tasks or not at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "contract/result.h"
#include "scoring/report.h"

struct sqlite3;

namespace trainopt {

// Written into the database header (PRAGMA application_id / user_version): a file that is not a
// trainopt history, or one written by a newer schema, is refused rather than changed.
constexpr int32_t kHistoryApplicationId = 0x74724f50;  // "trOP"
// Version 2 added the tables of `trainopt batch` (scoring/batch_db.h); a version 1 file is
// migrated when opened.
constexpr int kHistorySchemaVersion = 2;

// One task of a run, as the series (history_series.h) need it.
struct HistoryTaskResult {
    std::string task;
    std::string spec_hash;  // kUnknownHash for a report from before spec hashes
    double speedup = 0;     // 0 when invalid
    Interval speedup_ci;
    double submission_median_seconds = 0;
    double baseline_median_seconds = 0;
    bool valid = false;
};

// One finished score.
struct HistoryRun {
    int64_t id = 0;          // assigned by the database
    std::string created_at;  // the report's, UTC ISO 8601
    std::string commit;      // --commit, git describe of the trainopt checkout, or "unknown"
    std::string submission;
    std::string suite;
    std::string suite_hash;
    std::string machine;  // MachineIdentity::key(): "host / CPU model / N cores" or "unknown"
    std::string verdict;  // VALID, INVALID or REJECTED
    int reps = 0;
    SuiteSummary summary;  // arithmetic and geometric means with their 95% CIs
    std::vector<HistoryTaskResult> tasks;
};

// The history row of a finished report. Fails for an INCOMPLETE report: only finished scores
// belong in the history.
Result<HistoryRun> history_run_of(const ScoreReport& report, const std::string& commit,
                                  const std::string& machine_override = "");

// An open history database; closes it when destroyed. Move-only.
class HistoryDb {
  public:
    HistoryDb() = default;
    explicit HistoryDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
    HistoryDb(HistoryDb&& other) noexcept;
    HistoryDb& operator=(HistoryDb&& other) noexcept;
    HistoryDb(const HistoryDb&) = delete;
    HistoryDb& operator=(const HistoryDb&) = delete;
    ~HistoryDb();

    sqlite3* handle() const { return db_; }
    const std::string& path() const { return path_; }

  private:
    sqlite3* db_ = nullptr;
    std::string path_;
};

enum class HistoryOpen { create_if_absent, existing_only };

// Opens the history at `path`: a regular file (a link, a directory or another kind of file is
// refused, and so is a database that is not a trainopt history or has a newer schema). With
// create_if_absent a missing or empty file gets the current schema.
Result<HistoryDb> open_history(const std::string& path, HistoryOpen mode);

// Appends a run and its tasks in one transaction; returns the run's id. The full report JSON is
// kept alongside (runs.report), so later trainopt versions can recompute what they need.
Result<int64_t> append_run(HistoryDb& db, const HistoryRun& run, const std::string& report_json);

// Which runs to read: empty strings match everything.
struct HistoryFilter {
    std::string suite;
    std::string task;
    std::string submission;
};

// The runs that match, oldest first (created_at, then id), each with its tasks that match.
Result<std::vector<HistoryRun>> read_runs(HistoryDb& db, const HistoryFilter& filter);

}  // namespace trainopt
