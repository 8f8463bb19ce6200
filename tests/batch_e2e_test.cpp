// trainopt batch through the CLI on the tiny test suite (docs/batch.md): the example VALID, a
// broken trainer INVALID and a missing path REJECTED, each with its own report and history row,
// all on one batch's seeds; the baseline calibrated at the start and after every block; the
// leaderboard with every hostile name escaped; a batch run again resumes with what is not
// final and scores nothing twice; another batch's list in the same directory is refused.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "test_util.h"

namespace trainopt {
namespace {

using testing::read_json;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

// A single integer an SQL query on the database returns.
int64_t query_integer(const std::string& db_path, const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    int64_t value = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return value;
}

void execute(const std::string& db_path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
}

// An overlay whose trainer builds in seconds and exits 1 at once: INVALID on every task.
void write_broken_trainer(const std::string& dir) {
    write_text(dir + "/baseline/CMakeLists.txt", "add_executable(trainopt-train broken.cpp)\n");
    write_text(dir + "/baseline/broken.cpp",
               "#include <cstdio>\nint main() { std::puts(\"<b>broken</b>\"); return 1; }\n");
}

TEST(BatchEndToEnd, ScoresResumesAndRanksABatch) {
    TempDir dir;
    const std::string hostile = dir.path + "/subs/evil<b onmouseover=x>|[y](javascript:z)";
    write_broken_trainer(hostile);
    const std::string out = dir.path + "/out";
    write_text(dir.path + "/list.txt", "# the batch\n" + testing::project_root() +
                                           "/submissions/blas-tbb\n" + hostile + "\n" + dir.path +
                                           "/subs/missing\n");
    const std::vector<std::string> command = {
        "batch",  "--list", dir.path + "/list.txt", "--out", out, "--suite", "test", "--reps", "2",
        "--seed", "5",      "--retime-every",       "1"};
    auto r = testing::run_cli(command, dir.path + "/log1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("3 of 3 submissions scored, 1 VALID"), std::string::npos) << r.output;

    const nlohmann::json valid = read_json(out + "/000-blas-tbb.json");
    ASSERT_FALSE(valid.is_discarded()) << r.output;
    EXPECT_EQ(valid["verdict"], "VALID") << testing::all_reasons(valid);
    EXPECT_EQ(valid["command"], "batch");
    EXPECT_EQ(valid["seed"], 5);
    EXPECT_EQ(valid["tasks"][0]["baseline_seconds"].size(), 2u);
    EXPECT_NE(valid["warnings"].dump().find("scaled by the drift"), std::string::npos)
        << valid["warnings"].dump();
    const std::string broken_stem = out + "/001-evil_b_onmouseover_x___y__javascript_z_";
    const nlohmann::json broken = read_json(broken_stem + ".json");
    ASSERT_FALSE(broken.is_discarded()) << r.output;
    EXPECT_EQ(broken["verdict"], "INVALID");
    // the same seeds as the example: one set of references for the batch
    EXPECT_EQ(broken["tasks"][0]["seeds"][0], valid["tasks"][0]["seeds"][0]);
    const nlohmann::json missing = read_json(out + "/002-missing.json");
    EXPECT_EQ(missing["verdict"], "REJECTED");
    EXPECT_TRUE(std::filesystem::exists(out + "/000-blas-tbb.html"));
    EXPECT_TRUE(std::filesystem::exists(broken_stem + ".md"));

    const std::string db = out + "/batch.db";
    EXPECT_EQ(query_integer(db, "SELECT count(*) FROM runs"), 3);
    EXPECT_EQ(query_integer(db, "SELECT count(*) FROM batch_submissions WHERE run_id IS NULL"), 0);
    // a calibration of every seed at the start, a re-timing after each of the two submissions
    // that ran (one run of the task, two when the drift strayed from the last timing's)
    EXPECT_EQ(query_integer(db, "SELECT count(DISTINCT ordinal) FROM batch_calibrations"), 3);
    EXPECT_EQ(query_integer(db, "SELECT count(*) FROM batch_calibrations WHERE ordinal = 0"), 2);
    const int64_t retimed =
        query_integer(db, "SELECT count(*) FROM batch_calibrations WHERE ordinal > 0");
    EXPECT_GE(retimed, 2);
    EXPECT_LE(retimed, 4);
    EXPECT_EQ(query_integer(db, "SELECT count(*) FROM batches WHERE finished_at IS NOT NULL"), 1);

    const std::string board_md = read_text(out + "/leaderboard.md");
    const std::string board_html = read_text(out + "/leaderboard.html");
    EXPECT_NE(board_md.find("(000-blas-tbb.html)"), std::string::npos) << board_md;
    EXPECT_NE(board_md.find("4x human-expert reference"), std::string::npos);
    EXPECT_EQ(board_md.find("[y](javascript"), std::string::npos);
    EXPECT_EQ(board_html.find("<b onmouseover"), std::string::npos);
    EXPECT_NE(board_html.find("&lt;b onmouseover=x&gt;"), std::string::npos);

    // interrupted before the broken trainer's report was final: run again, only it is scored
    execute(db,
            "UPDATE batch_submissions SET run_id = NULL, report_path = NULL "
            "WHERE position = 1; UPDATE batches SET finished_at = NULL");
    std::filesystem::remove(broken_stem + ".json");
    r = testing::run_cli(command, dir.path + "/log2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("resuming, 2 of 3 submissions scored"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("building " + testing::project_root()), std::string::npos) << r.output;
    EXPECT_TRUE(std::filesystem::exists(broken_stem + ".json"));
    EXPECT_EQ(query_integer(db, "SELECT count(*) FROM runs"), 4);
    // finished: a third run scores nothing
    r = testing::run_cli(command, dir.path + "/log3");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(query_integer(db, "SELECT count(*) FROM runs"), 4);
    // the database holds the seed: private; another --seed does not resume the batch
    EXPECT_EQ(std::filesystem::status(db).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::vector<std::string> reseeded = command;
    reseeded[10] = "6";
    r = testing::run_cli(reseeded, dir.path + "/log3b");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("another --seed"), std::string::npos) << r.output;

    // another list in the same directory is refused
    write_text(dir.path + "/other.txt", hostile + "\n");
    std::vector<std::string> other = command;
    other[2] = dir.path + "/other.txt";
    r = testing::run_cli(other, dir.path + "/log4");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("other submissions"), std::string::npos) << r.output;

    // the leaderboard command: files, a column to sort by, a bad column
    r = testing::run_cli({"leaderboard", db, "--sort", "submission", "--md", dir.path + "/b.md",
                          "--html", dir.path + "/b.html"},
                         dir.path + "/log5");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(read_text(dir.path + "/b.md").find("(out/000-blas-tbb.html)"), std::string::npos);
    EXPECT_EQ(read_text(dir.path + "/b.html").find("<b onmouseover"), std::string::npos);
    r = testing::run_cli({"leaderboard", db, "--sort", "bogus"}, dir.path + "/log6");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = testing::run_cli({"batch", "--out", dir.path + "/empty"}, dir.path + "/log7");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    // a timeout or block length that is not a finite number would never kill a hanging trainer
    for (const std::vector<std::string>& bad : {std::vector<std::string>{"--timeout", "nan"},
                                                {"--timeout", "0"},
                                                {"--retime-minutes", "inf"},
                                                {"--retime-minutes", "-1"},
                                                {"--kill-factor", "0"}}) {
        std::vector<std::string> args = command;
        args.insert(args.end(), bad.begin(), bad.end());
        r = testing::run_cli(args, dir.path + "/log8");
        EXPECT_EQ(r.exit_code, 2) << bad[0] << " " << bad[1] << ": " << r.output;
    }
}

}  // namespace
}  // namespace trainopt
