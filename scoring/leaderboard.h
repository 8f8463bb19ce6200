// `trainopt leaderboard`: a batch's submissions as a Markdown and an HTML table (submission,
// verdict, mean speedup with its 95% CI, per-task speedups, a link to each report), sorted by a
// column, with the 4x human-expert line. Every submission name and path is untrusted text and
// goes through scoring/untrusted_text.h; links are percent-encoded.
#pragma once

#include <string>

#include "contract/result.h"
#include "scoring/batch_db.h"

namespace trainopt {

enum class LeaderboardSort { speedup, submission, verdict, position };

// "speedup", "submission", "verdict" or "position"; fails naming the choices otherwise.
Result<LeaderboardSort> parse_leaderboard_sort(const std::string& name);

struct LeaderboardView {
    Leaderboard board;
    LeaderboardSort sort = LeaderboardSort::speedup;
    // links to reports are written relative to this directory (the rendered file's); empty:
    // the paths as recorded
    std::string link_base;
};

// A row's order: VALID before the rest, then by the chosen column (speedup descending).
std::vector<LeaderboardEntry> sorted_entries(const LeaderboardView& view);

std::string leaderboard_to_markdown(const LeaderboardView& view);

// One self-contained page; clicking a column header re-sorts the table (a small inline script),
// and the 4x line stays between the rows above and below 4x when sorted by speedup.
std::string leaderboard_to_html(const LeaderboardView& view);

// A path as a link target: relative to `base` when both are given, every byte outside
// [A-Za-z0-9/._~-] percent-encoded.
std::string report_link(const std::string& path, const std::string& base);

}  // namespace trainopt
