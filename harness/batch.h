// `trainopt batch`: many submissions scored against one set of baseline references
// (docs/batch.md). Every submission is built once up front; the seeds are drawn when the batch
// starts and kept in the harness's database; the baseline runs once per task and seed as the
// reference every submission is verified against, and is timed again (once per task) after
// every block of submissions, each submission's runs compared with its seed's first baseline
// time scaled by the drift interpolated between the re-timings around them
// (scoring/baseline_drift.h). Each submission gets a full report and a
// row in the score history; an interrupted batch, run again with the same command, resumes
// with the first submission whose report is not final.
#pragma once

#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/score.h"
#include "scoring/batch_db.h"

namespace trainopt {

struct BatchOptions {
    // suite, reps, seed (tests only: fresh when absent), threads, timeout, memory, workdir,
    // sandbox and build cache; the report paths and --task/--with-generated are not used
    ScoreOptions score;
    std::vector<std::string> submissions;  // in the order they are scored
    std::string out_dir;                   // reports, leaderboard; the batch's key in the database
    std::string db;                        // the history database (default out_dir/batch.db)
    // A block of submissions ends with a re-timing of the baseline once it has `retime_every`
    // submissions (0: no limit by count) or its runs took `retime_minutes` (0: no limit by
    // time), whichever comes first. Both 0: the baseline is timed only at the start.
    int retime_every = 0;
    double retime_minutes = 10;
    double kill_factor = 20;  // a submission run is killed after this many baseline times
    std::string commit;       // recorded with each run in the history (default: git describe)
};

// The submissions to score: each entry of `dir` (a patch file, an overlay or a workspace
// directory; names starting with '.' skipped) in name order, or the lines of a list file
// (blank lines and lines starting with '#' skipped; relative paths are relative to the file).
Result<std::vector<std::string>> submissions_in_directory(const std::string& dir);
Result<std::vector<std::string>> submissions_in_list(const std::string& list_file);

// The report file stem of the submission at `position`: "007-" and the path's last component
// with every byte outside [A-Za-z0-9._-] replaced by '_', at most 60 of them.
std::string batch_report_name(int position, const std::string& submission);

struct BatchOutcome {
    int scored = 0;        // submissions with a final report (this run and earlier ones)
    int valid = 0;         // of them VALID
    int total = 0;         // submissions in the batch
    std::string db;        // the database the results are in
    std::string markdown;  // the leaderboard's files
    std::string html;
};

// The steps run_batch and the Slurm backend (harness/slurm_batch.h) share.

// Creates the output directory (mode 0700: reports carry the batch's seeds) unless it exists;
// refuses a link or a non-directory. Returns the batch's key: the absolute, normalized path.
Result<std::string> prepare_batch_out_dir(const std::string& out_dir);

// An exclusive lock (flock) on KEY/batch.lock, held while the descriptor is open: two processes
// writing one batch would score its submissions twice.
Result<int> lock_batch_out_dir(const std::string& key);

// --db, or KEY/batch.db.
std::string batch_db_path(const BatchOptions& options, const std::string& key);

// The batch keyed `key`: resumed when the database has it (with the same submissions, suite and
// repetitions; refused otherwise), else created with a fresh seed (options.score.seed in tests).
Result<BatchRecord> open_batch(HistoryDb& db, const BatchOptions& options, const std::string& key);

// Whether a block of `submissions` whose runs took `run_seconds` ends here with a re-timing:
// it holds retime_every of them, or its runs took retime_minutes (each limit off at 0).
bool batch_block_complete(const BatchOptions& options, size_t submissions, double run_seconds);

// KEY/leaderboard.md and .html from the database (their paths go into outcome).
Status write_batch_leaderboard(HistoryDb& db, const std::string& key, BatchOutcome& outcome);

// Runs (or resumes) the batch; fails when the harness cannot go on (bad options, the database,
// a baseline that does not run, an interrupt), with the reports finished so far kept.
Result<BatchOutcome> run_batch(const BatchOptions& options);

}  // namespace trainopt
