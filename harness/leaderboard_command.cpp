#include "harness/leaderboard_command.h"

#include <cstdio>
#include <filesystem>

#include "harness/cli_error.h"
#include "scoring/atomic_file.h"
#include "scoring/batch_db.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

namespace fs = std::filesystem;

constexpr int kExitUsage = 2;

// The batch's key as `batch` stores it: the absolute, normalized output directory.
std::string batch_key(const std::string& out_dir) {
    return out_dir.empty() ? "" : fs::absolute(out_dir).lexically_normal().string();
}

std::string directory_of(const std::string& path) {
    const fs::path parent = fs::path(path).parent_path();
    return parent.empty() ? "." : parent.string();
}

}  // namespace

Status write_leaderboard_files(HistoryDb& db, const std::string& out_dir, LeaderboardSort sort,
                               const std::string& markdown_path, const std::string& html_path) {
    Result<Leaderboard> board = read_leaderboard(db, batch_key(out_dir));
    if (!board) return failure(board.error());
    LeaderboardView view{*board, sort, ""};
    if (!markdown_path.empty()) {
        view.link_base = directory_of(markdown_path);
        if (Status written = write_file_atomic(markdown_path, leaderboard_to_markdown(view));
            !written)
            return written;
    }
    if (!html_path.empty()) {
        view.link_base = directory_of(html_path);
        return write_file_atomic(html_path, leaderboard_to_html(view));
    }
    return {};
}

int run_leaderboard(const LeaderboardCommand& c) {
    Result<LeaderboardSort> sort = parse_leaderboard_sort(c.sort);
    if (!sort) {
        fprintf(stderr, "trainopt leaderboard: error: %s\n", sort.error().c_str());
        return kExitUsage;
    }
    Result<HistoryDb> db = open_history(c.db, HistoryOpen::existing_only);
    if (!db) return fail(db.error());
    if (Status written = write_leaderboard_files(*db, c.batch, *sort, c.markdown_path, c.html_path);
        !written)
        return fail(written.error());
    Result<Leaderboard> board = read_leaderboard(*db, batch_key(c.batch));
    if (!board) return fail(board.error());
    LeaderboardView view{*board, *sort, ""};
    printf("%s", terminal_safe(leaderboard_to_markdown(view)).c_str());
    return 0;
}

}  // namespace trainopt
