// The parts of `trainopt batch` that run no trainer (docs/batch.md): the drift interpolation,
// the batch tables and the migration of a version 1 history, the leaderboard's order, 4x line
// and escaping, report names, submission lists, and the Slurm scripts.
#include "harness/batch.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <filesystem>

#include "harness/slurm_batch.h"
#include "scoring/baseline_drift.h"
#include "scoring/batch_db.h"
#include "scoring/leaderboard.h"
#include "test_util.h"

namespace trainopt {
namespace {

using testing::read_text;
using testing::TempDir;
using testing::write_text;

TEST(BatchDrift, TheFactorIsTheMedianOverTasksOfEachRunOverItsTasksFirstRuns) {
    const Calibration first = {
        {{100, 10}, {110, 20}, {120, 12}}, {{130, 40}, {140, 50}}, {{150, 5}, {160, 5}}};
    const DriftPoint start = first_drift_point(first);
    EXPECT_DOUBLE_EQ(start.at_unix, 130);
    EXPECT_DOUBLE_EQ(start.factor, 1);
    // 1.1 (over the median, 12), 0.9 (over 45), 1.6: a burst on one task does not move it
    const DriftPoint later = drift_point(first, {{300, 13.2}, {310, 40.5}, {320, 8}});
    EXPECT_DOUBLE_EQ(later.at_unix, 310);
    EXPECT_NEAR(later.factor, 1.1, 1e-12);
    // a task without a time is left out; none left: NaN, never a factor made up
    EXPECT_NEAR(drift_point(first, {{300, 13.2}, {310, 0}}).factor, 1.1, 1e-12);
    EXPECT_TRUE(std::isnan(drift_point(first, {{300, 0}}).factor));
    EXPECT_TRUE(std::isnan(drift_point(first, {}).factor));
    EXPECT_TRUE(std::isnan(drift_point(Calibration{{}}, {{300, 10}}).factor));
}

TEST(BatchDrift, AFactorThatStraysFromTheLastOneIsCheckedAgain) {
    EXPECT_FALSE(drift_needs_recheck(1.0, 1.0 + kDriftRecheck * 0.9));
    EXPECT_FALSE(drift_needs_recheck(1.2, 1.2 * (1 - kDriftRecheck * 0.9)));
    EXPECT_TRUE(drift_needs_recheck(1.0, 1.0 + kDriftRecheck * 1.1));
    EXPECT_TRUE(drift_needs_recheck(1.2, 1.2 * (1 - kDriftRecheck * 1.1)));
    EXPECT_TRUE(drift_needs_recheck(1.0, std::nan("")));
}

TEST(BatchDrift, InterpolatesTheFactorLinearlyInTimeAndClamps) {
    const DriftPoint before{100, 1.0}, after{200, 1.2};
    EXPECT_DOUBLE_EQ(interpolated_factor(before, after, 100), 1.0);
    EXPECT_DOUBLE_EQ(interpolated_factor(before, after, 150), 1.1);
    EXPECT_DOUBLE_EQ(interpolated_factor(before, after, 200), 1.2);
    EXPECT_DOUBLE_EQ(interpolated_factor(before, after, 50), 1.0);  // clamped
    EXPECT_DOUBLE_EQ(interpolated_factor(before, after, 900), 1.2);
    EXPECT_DOUBLE_EQ(interpolated_factor(before, before, 150), 1.0);  // no span
}

TEST(BatchDrift, ABlockEndsAtEitherLimitAndNeverWhenBothAreOff) {
    BatchOptions o;
    o.retime_every = 0;
    o.retime_minutes = 10;
    EXPECT_FALSE(batch_block_complete(o, 50, 599));
    EXPECT_TRUE(batch_block_complete(o, 1, 600));
    o.retime_every = 3;
    EXPECT_FALSE(batch_block_complete(o, 2, 10));
    EXPECT_TRUE(batch_block_complete(o, 3, 10));
    EXPECT_TRUE(batch_block_complete(o, 1, 601));
    o.retime_minutes = 0;
    EXPECT_FALSE(batch_block_complete(o, 2, 1e9));
    o.retime_every = 0;
    EXPECT_FALSE(batch_block_complete(o, 1000, 1e9));
}

// A finished report of tasks "x" and "y" with the given speedup (VALID unless `invalid`).
ScoreReport report_of(const std::string& submission, double speedup, bool invalid = false) {
    ScoreReport r = testing::two_task_report(submission, 10 / speedup);
    r.command = "batch";
    r.created_at = "2026-12-02T00:00:00Z";
    r.seed = 42;
    for (TaskReport& t : r.tasks) {
        t.valid = !invalid;
        if (invalid) t.reasons = {"loss differs"};
    }
    finalize_report(r);
    return r;
}

BatchRecord batch_of(const std::string& out_dir, const std::vector<std::string>& submissions) {
    BatchRecord b;
    b.out_dir = out_dir;
    b.created_at = "2026-12-02T00:00:00Z";
    b.suite = "test";
    b.reps = 3;
    b.seed = 0xFFFFFFFFFFFFFFF0ull;  // above INT64_MAX: stored as text
    b.retime_every = 4;
    b.machine = "host / CPU / 2 cores";
    for (size_t i = 0; i < submissions.size(); i++)
        b.entries.push_back(
            {(int)i, submissions[i], batch_report_name((int)i, submissions[i]), 0, ""});
    return b;
}

Status record(HistoryDb& db, int64_t batch_id, int position, const ScoreReport& r,
              const std::string& report_path) {
    Result<HistoryRun> run = history_run_of(r, "v1");
    if (!run) return failure(run.error());
    Result<int64_t> id =
        record_batch_result(db, batch_id, position, *run, report_to_json(r).dump(), report_path);
    if (!id) return failure(id.error());
    return {};
}

TEST(BatchDb, StoresResumableStateAndTheLeaderboard) {
    TempDir dir;
    Result<HistoryDb> db = open_history(dir.path + "/h.db", HistoryOpen::create_if_absent);
    ASSERT_TRUE(db) << db.error();
    Result<std::optional<BatchRecord>> none = find_batch(*db, "/out");
    ASSERT_TRUE(none) << none.error();
    EXPECT_FALSE(*none);
    const BatchRecord stored = batch_of("/out", {"subs/a", "subs/b", "subs/c"});
    Result<int64_t> id = create_batch(*db, stored);
    ASSERT_TRUE(id) << id.error();
    EXPECT_FALSE(create_batch(*db, stored));  // one batch per output directory

    Result<int> first = record_calibration(*db, *id, {{"x", 0, 100, 10}, {"x", 1, 110, 10.5}});
    ASSERT_TRUE(first) << first.error();
    EXPECT_EQ(*first, 0);
    Result<int> second = record_calibration(*db, *id, {{"x", 0, 200, 11}});
    ASSERT_TRUE(second);
    EXPECT_EQ(*second, 1);
    Result<std::vector<std::vector<CalibrationSample>>> calibrations = read_calibrations(*db, *id);
    ASSERT_TRUE(calibrations) << calibrations.error();
    ASSERT_EQ(calibrations->size(), 2u);
    EXPECT_EQ((*calibrations)[0].size(), 2u);
    EXPECT_DOUBLE_EQ((*calibrations)[1][0].seconds, 11);

    ASSERT_TRUE(record(*db, *id, 1, report_of("subs/b", 6), "/out/001-b.html"));
    EXPECT_FALSE(record(*db, *id, 7, report_of("subs/z", 6), "/out/z.html"));  // no such entry
    Result<std::optional<BatchRecord>> found = find_batch(*db, "/out");
    ASSERT_TRUE(found && *found);
    const BatchRecord& b = **found;
    EXPECT_EQ(b.seed, stored.seed);
    EXPECT_EQ(b.retime_every, 4);
    EXPECT_FALSE(b.finished);
    ASSERT_EQ(b.entries.size(), 3u);
    EXPECT_EQ(b.entries[0].run_id, 0);  // still to score
    EXPECT_NE(b.entries[1].run_id, 0);
    EXPECT_EQ(b.entries[1].report_path, "/out/001-b.html");
    EXPECT_EQ(b.entries[2].name, "002-c");

    Result<Leaderboard> board = read_leaderboard(*db, "");  // the latest batch
    ASSERT_TRUE(board) << board.error();
    EXPECT_EQ(board->pending, 2);
    ASSERT_EQ(board->entries.size(), 1u);
    EXPECT_EQ(board->entries[0].submission, "subs/b");
    EXPECT_NEAR(board->entries[0].run.summary.arithmetic, 6, 1e-9);
    ASSERT_TRUE(finish_batch(*db, *id));
    found = find_batch(*db, "/out");
    EXPECT_TRUE((*found)->finished);
    EXPECT_FALSE(read_leaderboard(*db, "/elsewhere"));
}

TEST(BatchDb, MigratesAVersionOneHistory) {
    TempDir dir;
    const std::string path = dir.path + "/v1.db";
    {
        Result<HistoryDb> db = open_history(path, HistoryOpen::create_if_absent);
        ASSERT_TRUE(db);
        ASSERT_TRUE(append_run(*db, *history_run_of(report_of("s", 2), "v0"), "{}"));
        // back to what version 1 had: no batch tables
        ASSERT_EQ(sqlite3_exec(db->handle(),
                               "DROP TABLE batch_calibrations; DROP TABLE batch_submissions; "
                               "DROP TABLE batches; PRAGMA user_version=1",
                               nullptr, nullptr, nullptr),
                  SQLITE_OK);
    }
    Result<HistoryDb> db = open_history(path, HistoryOpen::existing_only);
    ASSERT_TRUE(db) << db.error();
    Result<int64_t> id = create_batch(*db, batch_of("/out", {"a"}));
    ASSERT_TRUE(id) << id.error();
    Result<std::vector<HistoryRun>> runs = read_runs(*db, {});
    ASSERT_TRUE(runs);
    EXPECT_EQ(runs->size(), 1u);  // the old run is kept
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db->handle(), "PRAGMA user_version", -1, &st, nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(st, 0), kHistorySchemaVersion);
    sqlite3_finalize(st);
}

LeaderboardView view_of(std::vector<std::pair<std::string, double>> rows, LeaderboardSort sort) {
    LeaderboardView view;
    view.board.out_dir = "/out";
    view.board.suite = "test";
    view.board.finished = true;
    view.sort = sort;
    int position = 0;
    for (const auto& [name, speedup] : rows) {
        LeaderboardEntry e;
        e.position = position++;
        e.submission = name;
        e.report_path = "/out/" + batch_report_name(e.position, name) + ".html";
        e.run = *history_run_of(report_of(name, speedup > 0 ? speedup : 1, speedup <= 0), "v");
        view.board.entries.push_back(e);
    }
    return view;
}

std::vector<std::string> names(const std::vector<LeaderboardEntry>& rows) {
    std::vector<std::string> out;
    for (const LeaderboardEntry& e : rows) out.push_back(e.submission);
    return out;
}

TEST(Leaderboard, SortsWithTheFourXLine) {
    const LeaderboardView view =
        view_of({{"slow", 2}, {"broken", 0}, {"fast", 9}, {"ok", 5}}, LeaderboardSort::speedup);
    EXPECT_EQ(names(sorted_entries(view)),
              (std::vector<std::string>{"fast", "ok", "slow", "broken"}));
    LeaderboardView linked = view;
    linked.link_base = "/out";
    const std::string md = leaderboard_to_markdown(linked);
    const size_t line = md.find("-- 4x human-expert reference --");
    ASSERT_NE(line, std::string::npos);
    EXPECT_LT(md.find("[ok]"), line);  // ok (5x) above, slow (2x) below
    EXPECT_LT(line, md.find("[slow]"));
    EXPECT_NE(md.find("INVALID"), std::string::npos);
    EXPECT_NE(md.find("](001-broken.html)"), std::string::npos);
    EXPECT_NE(md.find("9.00x"), std::string::npos);
    LeaderboardView by_name = view;
    by_name.sort = LeaderboardSort::submission;
    EXPECT_EQ(names(sorted_entries(by_name)),
              (std::vector<std::string>{"broken", "fast", "ok", "slow"}));
    EXPECT_EQ(leaderboard_to_markdown(by_name).find("-- 4x human-expert"), std::string::npos);
    const std::string html = leaderboard_to_html(view);
    EXPECT_NE(html.find("id=\"line\""), std::string::npos);
    EXPECT_NE(html.find("sortBy(3,true)"), std::string::npos);
    EXPECT_TRUE(parse_leaderboard_sort("verdict"));
    EXPECT_FALSE(parse_leaderboard_sort("bogus"));
}

TEST(Leaderboard, EscapesHostileNamesAndLinks) {
    const std::string hostile = "<script>alert(1)</script>|[x](javascript:y)\"'\x1b[2J";
    LeaderboardView view = view_of({{hostile, 5}}, LeaderboardSort::speedup);
    view.board.entries[0].report_path = "/out/a b\"><script>.html";
    const std::string html = leaderboard_to_html(view);
    EXPECT_EQ(html.find("<script>alert"), std::string::npos);
    EXPECT_EQ(html.find("\"><script>"), std::string::npos);
    EXPECT_EQ(html.find('\x1b'), std::string::npos);
    EXPECT_NE(html.find("a%20b%22%3E%3Cscript%3E.html"), std::string::npos);
    const std::string md = leaderboard_to_markdown(view);
    EXPECT_EQ(md.find("<script>"), std::string::npos);
    EXPECT_EQ(md.find("[x](javascript"), std::string::npos);
    EXPECT_EQ(md.find('\x1b'), std::string::npos);
    // a table row stays one row: the name's '|' is escaped
    const std::string row = md.substr(md.find("| 1 |"));
    EXPECT_EQ(row.find("\\|"), row.find('|', 6) - 1);
    EXPECT_EQ(report_link("/out/r/x.html", "/out"), "r/x.html");
}

TEST(Batch, ReportNamesAndSubmissionLists) {
    EXPECT_EQ(batch_report_name(3, "subs/blas-tbb/"), "003-blas-tbb");
    EXPECT_EQ(batch_report_name(12, "a/fix.patch"), "012-fix.patch");
    EXPECT_EQ(batch_report_name(0, "x/../.hidden"), "000-_.hidden");
    EXPECT_EQ(batch_report_name(0, "we ird/$(rm -rf)"), "000-__rm_-rf_");
    TempDir dir;
    std::filesystem::create_directories(dir.path + "/subs/b");
    std::filesystem::create_directories(dir.path + "/subs/a");
    std::filesystem::create_directories(dir.path + "/subs/.git");
    write_text(dir.path + "/subs/c.patch", "");
    Result<std::vector<std::string>> listed = submissions_in_directory(dir.path + "/subs");
    ASSERT_TRUE(listed) << listed.error();
    EXPECT_EQ(*listed, (std::vector<std::string>{dir.path + "/subs/a", dir.path + "/subs/b",
                                                 dir.path + "/subs/c.patch"}));
    write_text(dir.path + "/list.txt", "# a comment\nsubs/a\n\n/abs/x  \n");
    listed = submissions_in_list(dir.path + "/list.txt");
    ASSERT_TRUE(listed) << listed.error();
    EXPECT_EQ(*listed, (std::vector<std::string>{dir.path + "/subs/a", "/abs/x"}));
    write_text(dir.path + "/empty.txt", "# nothing\n");
    EXPECT_FALSE(submissions_in_list(dir.path + "/empty.txt"));
    EXPECT_FALSE(submissions_in_directory(dir.path + "/list.txt"));
    std::filesystem::create_symlink(dir.path + "/list.txt", dir.path + "/link.txt");
    EXPECT_FALSE(submissions_in_list(dir.path + "/link.txt"));
}

TEST(BatchSlurm, WritesAnExclusiveArrayAndAMergeJob) {
    TempDir dir;
    BatchOptions o;
    o.score.suite = "test";
    o.score.reps = 2;
    o.score.seed = 77;
    o.submissions = {"/subs/a", "/subs/it's"};
    o.out_dir = dir.path + "/out";
    SlurmOptions slurm;
    slurm.submit = false;
    slurm.sbatch_lines = {"--partition=cpu"};
    slurm.trainopt = "/usr/bin/trainopt";
    Result<SlurmPlan> plan = submit_slurm_batch(o, slurm);
    ASSERT_TRUE(plan) << plan.error();
    EXPECT_EQ(plan->positions, (std::vector<int>{0, 1}));
    const std::string array = read_text(plan->array_script);
    EXPECT_NE(array.find("#SBATCH --array=0,1\n"), std::string::npos);
    EXPECT_NE(array.find("#SBATCH --exclusive\n"), std::string::npos);
    EXPECT_NE(array.find("#SBATCH --partition=cpu\n"), std::string::npos);
    EXPECT_NE(array.find("'/subs/it'\\''s'"), std::string::npos);
    EXPECT_NE(array.find("--seed 77 --retime-every 0 --retime-minutes 0"), std::string::npos);
    EXPECT_NE(array.find("/out/shards/1 "), std::string::npos);
    const std::string merge = read_text(plan->merge_script);
    EXPECT_NE(merge.find("batch --merge-shards --out " + dir.path + "/out"), std::string::npos);
    EXPECT_EQ(std::filesystem::status(plan->array_script).permissions() &
                  std::filesystem::perms::others_read,
              std::filesystem::perms::none);
    // a shard's report, merged into the batch's database
    const std::string shard = dir.path + "/out/shards/1";
    std::filesystem::create_directories(shard);
    ScoreReport r = report_of("/subs/it's", 5);
    r.seed = 77;
    write_text(shard + "/" + batch_report_name(0, "/subs/it's") + ".json",
               report_to_json(r).dump());
    Result<BatchOutcome> merged = merge_slurm_shards(o);
    ASSERT_TRUE(merged) << merged.error();
    EXPECT_EQ(merged->scored, 1);
    EXPECT_EQ(merged->total, 2);
    EXPECT_NE(read_text(merged->markdown).find("5.00x"), std::string::npos);
    // the same command again submits only what is left
    plan = submit_slurm_batch(o, slurm);
    ASSERT_TRUE(plan) << plan.error();
    EXPECT_EQ(plan->positions, (std::vector<int>{0}));
    // a report of another seed is not this batch's
    write_text(dir.path + "/out/shards/0/" + batch_report_name(0, "/subs/a") + ".json",
               report_to_json(report_of("/subs/a", 3)).dump());
    EXPECT_FALSE(merge_slurm_shards(o));
}

}  // namespace
}  // namespace trainopt
