// `trainopt leaderboard DB [--batch OUT] [--md F] [--html F] [--sort COLUMN]`: a batch's
// submissions ranked (scoring/leaderboard.h); `trainopt batch` writes the same files next to
// its reports after every block.
#pragma once

#include <string>

#include "contract/result.h"
#include "scoring/history_db.h"
#include "scoring/leaderboard.h"

namespace trainopt {

// Renders the batch keyed by `out_dir` (the latest when empty) into the files given (either may
// be empty), links relative to each file's directory.
Status write_leaderboard_files(HistoryDb& db, const std::string& out_dir, LeaderboardSort sort,
                               const std::string& markdown_path, const std::string& html_path);

struct LeaderboardCommand {
    std::string db;
    std::string batch;  // the batch's output directory; empty: the latest batch
    std::string sort = "speedup";
    std::string markdown_path, html_path;
};

// Prints the Markdown table and writes the files asked for: 0, 1 on an error, 2 for an unknown
// sort column.
int run_leaderboard(const LeaderboardCommand& command);

}  // namespace trainopt
