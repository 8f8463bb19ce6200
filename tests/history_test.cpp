// The score history (scoring/history_db.h, history_series.h, history_render.h): round trips,
// refusals of files that are not a history, atomic appends, series per spec hash and machine,
// and escaping of everything a database holds.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "scoring/history_db.h"
#include "scoring/history_render.h"
#include "scoring/history_series.h"
#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;
using testing::write_text;

size_t occurrences(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
    return n;
}

const std::string kSpecA(64, 'a'), kSpecB(64, 'b');

// A finished VALID report of tasks "x" and "y" whose submission runs take `scale` seconds.
ScoreReport report_at(const std::string& created_at, double scale,
                      const std::string& submission = "subs/s",
                      const std::string& y_spec = kSpecB) {
    ScoreReport r = testing::two_task_report(submission, scale, y_spec);
    r.created_at = created_at;
    finalize_report(r);
    return r;
}

Result<int64_t> add(const std::string& db_path, const ScoreReport& r, const std::string& commit) {
    Result<HistoryDb> db = open_history(db_path, HistoryOpen::create_if_absent);
    if (!db) return failure(db.error());
    Result<HistoryRun> run = history_run_of(r, commit);
    if (!run) return failure(run.error());
    return append_run(*db, *run, report_to_json(r).dump());
}

std::vector<HistoryRun> read_all(const std::string& db_path, const HistoryFilter& filter = {}) {
    Result<HistoryDb> db = open_history(db_path, HistoryOpen::existing_only);
    EXPECT_TRUE(db) << db.error();
    if (!db) return {};
    Result<std::vector<HistoryRun>> runs = read_runs(*db, filter);
    EXPECT_TRUE(runs) << runs.error();
    return runs ? *runs : std::vector<HistoryRun>{};
}

TEST(History, RoundTripsRunsAndTasks) {
    TempDir dir;
    const std::string db = dir.path + "/h.db";
    ASSERT_TRUE(add(db, report_at("2026-12-02T00:00:00Z", 2.0), "v2"));
    ASSERT_TRUE(add(db, report_at("2026-12-01T00:00:00Z", 1.0), "v1"));  // older, added later
    ASSERT_TRUE(add(db, report_at("2026-12-03T00:00:00Z", 1.0, "subs/other"), "v3"));
    const std::vector<HistoryRun> runs = read_all(db);
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_EQ(runs[0].commit, "v1");  // oldest first, by the reports' times
    EXPECT_EQ(runs[1].commit, "v2");
    const HistoryRun& r = runs[0];
    EXPECT_EQ(r.created_at, "2026-12-01T00:00:00Z");
    EXPECT_EQ(r.submission, "subs/s");
    EXPECT_EQ(r.suite, "test");
    EXPECT_EQ(r.suite_hash, suite_hash({{"x", kSpecA}, {"y", kSpecB}}));
    EXPECT_EQ(r.machine, "host / CPU / 2 cores");
    EXPECT_EQ(r.verdict, "VALID");
    EXPECT_EQ(r.reps, 3);
    EXPECT_NEAR(r.summary.arithmetic, 10, 1e-9);
    EXPECT_LE(r.summary.arithmetic_ci.low, r.summary.arithmetic_ci.high);
    ASSERT_EQ(r.tasks.size(), 2u);
    EXPECT_EQ(r.tasks[1].task, "y");
    EXPECT_EQ(r.tasks[1].spec_hash, kSpecB);
    EXPECT_NEAR(r.tasks[1].speedup, 10, 1e-9);
    EXPECT_NEAR(r.tasks[1].submission_median_seconds, 1.0, 1e-12);
    EXPECT_NEAR(r.tasks[1].baseline_median_seconds, 10.0, 1e-12);
    EXPECT_TRUE(r.tasks[1].valid);
    // the filters
    EXPECT_EQ(read_all(db, {"", "", "subs/other"}).size(), 1u);
    EXPECT_EQ(read_all(db, {"other suite", "", ""}).size(), 0u);
    const std::vector<HistoryRun> only_y = read_all(db, {"", "y", ""});
    ASSERT_EQ(only_y.size(), 3u);
    EXPECT_EQ(only_y[0].tasks.size(), 1u);
    EXPECT_TRUE(read_all(db, {"", "no such task", ""}).empty());
    // the schema is versioned and the file is in WAL mode
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_STREQ((const char*)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(st, 0), kHistorySchemaVersion);
    sqlite3_finalize(st);
    sqlite3_close(raw);
}

TEST(History, OnlyFinishedScoresGoIn) {
    ScoreReport r = report_at("2026-12-01T00:00:00Z", 1.0);
    r.complete = false;
    finalize_report(r);
    Result<HistoryRun> run = history_run_of(r, "v1");
    ASSERT_FALSE(run);
    EXPECT_NE(run.error().find("INCOMPLETE"), std::string::npos);
}

TEST(History, AnAppendIsAllOrNothing) {
    TempDir dir;
    const std::string db = dir.path + "/h.db";
    ASSERT_TRUE(add(db, report_at("2026-12-01T00:00:00Z", 1.0), "v1"));
    ScoreReport twice = report_at("2026-12-02T00:00:00Z", 1.0);
    twice.tasks[1].name = "x";  // two task rows with one key: the second insert fails
    Result<int64_t> failed = add(db, twice, "v2");
    ASSERT_FALSE(failed);
    EXPECT_NE(failed.error().find("cannot add task x"), std::string::npos) << failed.error();
    const std::vector<HistoryRun> runs = read_all(db);
    ASSERT_EQ(runs.size(), 1u);  // the run's row was rolled back with its tasks
    EXPECT_EQ(runs[0].commit, "v1");
}

TEST(History, RefusesWhatIsNotAHistory) {
    TempDir dir;
    // missing: created on append, refused when only shown
    Result<HistoryDb> missing = open_history(dir.path + "/none.db", HistoryOpen::existing_only);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().find("does not exist"), std::string::npos);
    // an empty file is an empty database: a history is created in it
    write_text(dir.path + "/empty.db", "");
    Result<HistoryDb> empty = open_history(dir.path + "/empty.db", HistoryOpen::existing_only);
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().find("holds no runs"), std::string::npos) << empty.error();
    EXPECT_TRUE(add(dir.path + "/empty.db", report_at("2026-12-01T00:00:00Z", 1.0), "v1"));
    // garbage
    write_text(dir.path + "/garbage.db", std::string(4096, 'x'));
    Result<HistoryDb> garbage =
        open_history(dir.path + "/garbage.db", HistoryOpen::create_if_absent);
    ASSERT_FALSE(garbage);
    EXPECT_NE(garbage.error().find("not a database"), std::string::npos) << garbage.error();
    // a history whose pages were overwritten
    const std::string damaged = dir.path + "/damaged.db";
    ASSERT_TRUE(add(damaged, report_at("2026-12-01T00:00:00Z", 1.0), "v1"));
    {
        // checkpoint the WAL into the file first, then overwrite its second page
        Result<HistoryDb> db = open_history(damaged, HistoryOpen::existing_only);
        ASSERT_TRUE(db);
        sqlite3_exec(db->handle(), "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
    }
    {
        std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(4096);
        const std::string junk(4096, '\xff');
        f.write(junk.data(), (std::streamsize)junk.size());
    }
    Result<HistoryDb> db = open_history(damaged, HistoryOpen::existing_only);
    if (db) {
        Result<std::vector<HistoryRun>> runs = read_runs(*db, {});
        ASSERT_FALSE(runs);  // an error with SQLite's reason, not a crash or silent garbage
        EXPECT_NE(runs.error().find("history " + damaged), std::string::npos) << runs.error();
    }
    // a directory, a symbolic link, a device
    std::filesystem::create_directory(dir.path + "/dir.db");
    Result<HistoryDb> directory = open_history(dir.path + "/dir.db", HistoryOpen::create_if_absent);
    ASSERT_FALSE(directory);
    EXPECT_NE(directory.error().find("is a directory"), std::string::npos);
    std::filesystem::create_symlink(dir.path + "/empty.db", dir.path + "/link.db");
    Result<HistoryDb> link = open_history(dir.path + "/link.db", HistoryOpen::create_if_absent);
    ASSERT_FALSE(link);
    EXPECT_NE(link.error().find("symbolic link"), std::string::npos);
    Result<HistoryDb> device = open_history("/dev/null", HistoryOpen::create_if_absent);
    ASSERT_FALSE(device);
    EXPECT_NE(device.error().find("not a regular file"), std::string::npos);
    // another program's SQLite database, and a history from a newer trainopt
    for (const char* sql : {"CREATE TABLE t(a)",
                            "PRAGMA application_id=1953648464; "
                            "PRAGMA user_version=99; CREATE TABLE t(a)"}) {
        const std::string path = dir.path + "/foreign.db";
        std::filesystem::remove(path);
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(raw, sql, nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(raw);
        Result<HistoryDb> foreign = open_history(path, HistoryOpen::create_if_absent);
        ASSERT_FALSE(foreign);
        EXPECT_TRUE(foreign.error().find("not a trainopt history") != std::string::npos ||
                    foreign.error().find("newer trainopt") != std::string::npos)
            << foreign.error();
    }
}

// ---- series ----

HistoryRun run_of(int64_t id, const std::string& machine, const std::string& spec, double speedup,
                  bool valid = true) {
    HistoryRun r;
    r.id = id;
    r.created_at = "2026-12-" + std::to_string(1 + id % 28) + "T00:00:00Z";
    r.commit = "c" + std::to_string(id);
    r.submission = "subs/s";
    r.suite = "test";
    r.machine = machine;
    r.verdict = valid ? "VALID" : "INVALID";
    HistoryTaskResult t;
    t.task = "x";
    t.spec_hash = spec;
    t.speedup = valid ? speedup : 0;
    t.speedup_ci = {speedup * 0.95, speedup * 1.05};
    t.submission_median_seconds = 1;
    t.baseline_median_seconds = speedup;
    t.valid = valid;
    r.tasks.push_back(t);
    return r;
}

// 20 nightly runs at 10x, then 30 at 11x, 3% noise; an INVALID run in between.
std::vector<HistoryRun> nightly_with_a_step() {
    std::mt19937_64 rng(42);
    std::normal_distribution<double> z(0, 1);
    std::vector<HistoryRun> runs;
    for (int i = 0; i < 50; i++)
        runs.push_back(
            run_of(i, "host / CPU / 2 cores", kSpecA, (i < 20 ? 10 : 11) * (1 + 0.03 * z(rng))));
    runs.insert(runs.begin() + 10, run_of(100, "host / CPU / 2 cores", kSpecA, 0, false));
    return runs;
}

TEST(History, SeriesSeparateSpecsAndMachinesAndFindTheStep) {
    std::vector<HistoryRun> runs = nightly_with_a_step();
    // the same task on another machine, and with another spec: series of their own
    for (int i = 0; i < 8; i++)
        runs.push_back(run_of(200 + i, "other / CPU / 8 cores", kSpecA, 20));
    for (int i = 0; i < 8; i++) runs.push_back(run_of(300 + i, "host / CPU / 2 cores", kSpecB, 5));
    for (int i = 0; i < 8; i++) runs.push_back(run_of(400 + i, kUnknownHash, kSpecA, 5));
    const std::vector<HistorySeries> series = history_series(runs);
    ASSERT_EQ(series.size(), 4u);
    const HistorySeries* main = nullptr;
    for (const HistorySeries& s : series) {
        if (s.machine == "host / CPU / 2 cores" && s.spec_hash == kSpecA) main = &s;
        if (s.machine == kUnknownHash) {
            EXPECT_NE(s.not_analysed.find("machine is unknown"), std::string::npos);
        } else if (s.spec_hash == kSpecB || s.machine != "host / CPU / 2 cores") {
            EXPECT_TRUE(s.change_points.empty());
            EXPECT_EQ(s.points.size(), 8u);
        }
    }
    ASSERT_NE(main, nullptr);
    ASSERT_EQ(main->points.size(), 51u);
    EXPECT_FALSE(main->points[10].valid);
    ASSERT_EQ(main->change_points.size(), 1u);
    // index into all points, the INVALID one included: the first run at 11x is run 21 of 51
    EXPECT_NEAR((double)main->change_points[0].index, 21, 1);
    EXPECT_NEAR(main->change_points[0].relative_change, 0.10, 0.03);
}

TEST(History, RendersTablesAndChartsWithTheChangePoint) {
    HistoryView view;
    view.database = "h.db";
    view.runs = 51;
    view.series = history_series(nightly_with_a_step());
    const std::string md = history_to_markdown(view);
    EXPECT_NE(md.find("1 change points"), std::string::npos) << md;
    EXPECT_NE(md.find("**change point** at run"), std::string::npos) << md;
    EXPECT_NE(md.find("| INVALID |"), std::string::npos) << md;
    const std::string html = history_to_html(view);
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_NE(html.find("stroke-dasharray='5 3'"), std::string::npos);  // the change's line
    EXPECT_NE(html.find("<td class='bad'>INVALID</td>"), std::string::npos);
    for (const char* external : {"<script", "<link", "<img", "<iframe",
                                 "src=", "href=", "http:", "https:", "@import", "url("})
        EXPECT_EQ(html.find(external), std::string::npos) << external;
}

TEST(History, EverythingFromTheDatabaseIsEscaped) {
    const std::string evil = "<script>alert(1)</script>\x1b[31m\"'&|`#\u202e";
    std::vector<HistoryRun> runs = nightly_with_a_step();
    for (HistoryRun& r : runs) {
        r.submission = evil;
        r.commit = evil;
        r.created_at = evil;
        r.machine = evil;
        r.tasks[0].task = evil;
        r.tasks[0].speedup_ci = {NAN, INFINITY};  // a damaged row: drawn without its CI
    }
    runs[3].tasks[0].speedup = -INFINITY;
    HistoryView view;
    view.database = evil;
    view.filter = {evil, evil, evil};
    view.runs = runs.size();
    view.series = history_series(runs);
    const std::string html = history_to_html(view);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_EQ(html.find('\x1b'), std::string::npos);
    EXPECT_EQ(html.find("\u202e"), std::string::npos);
    EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
    EXPECT_EQ(html.find("nan"), std::string::npos);
    EXPECT_EQ(html.find("inf"), std::string::npos);
    const std::string md = history_to_markdown(view);
    // the database path in a code span (inert); everything else backslash-escaped
    EXPECT_NE(md.find("- database: `` <script>alert(1)</script>"), std::string::npos) << md;
    EXPECT_EQ(occurrences(md, "<script") - occurrences(md, "\\<script"), 1u) << md;
    EXPECT_EQ(md.find('\x1b'), std::string::npos);
    EXPECT_EQ(md.find("\u202e"), std::string::npos);
    EXPECT_EQ(md.find("\n# "), std::string::npos);
    EXPECT_NE(md.find("| \\<script\\>alert(1)\\</script\\>\"'\\&\\|\\`\\# |"), std::string::npos)
        << md;
}

// ---- on the command line ----

TEST(History, CommandLineAddsShowsAndRefuses) {
    TempDir dir;
    const std::string db = dir.path + "/h.db";
    for (int i = 0; i < 3; i++) {
        const std::string path = dir.path + "/r" + std::to_string(i) + ".json";
        write_text(
            path, report_to_json(
                      report_at("2026-12-0" + std::to_string(i + 1) + "T00:00:00Z", 1.0 + 0.01 * i))
                      .dump());
        testing::CliResult r = testing::run_cli(
            {"history", "add", db, path, "--commit", "c" + std::to_string(i)}, dir.path + "/log");
        ASSERT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find("added to"), std::string::npos);
    }
    testing::CliResult shown = testing::run_cli(
        {"history", db, "--task", "x", "--md", dir.path + "/h.md", "--html", dir.path + "/h.html"},
        dir.path + "/log");
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_NE(shown.output.find("3 runs, 1 series"), std::string::npos) << shown.output;
    EXPECT_NE(shown.output.find("| c2 |"), std::string::npos) << shown.output;
    EXPECT_NE(testing::read_text(dir.path + "/h.html").find("<svg"), std::string::npos);
    // an INCOMPLETE report, a malformed one, and a database that is a directory
    ScoreReport incomplete = report_at("2026-12-09T00:00:00Z", 1.0);
    incomplete.complete = false;
    finalize_report(incomplete);
    write_text(dir.path + "/incomplete.json", report_to_json(incomplete).dump());
    write_text(dir.path + "/bad.json", "[]");
    std::filesystem::create_directory(dir.path + "/dir.db");
    for (const auto& [args, message] :
         std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"history", "add", db, dir.path + "/incomplete.json"}, "INCOMPLETE"},
             {{"history", "add", db, dir.path + "/bad.json"}, "not a trainopt report"},
             {{"history", "add", dir.path + "/dir.db", dir.path + "/r0.json"}, "is a directory"},
             {{"history", dir.path + "/missing.db"}, "does not exist"}}) {
        testing::CliResult r = testing::run_cli(args, dir.path + "/log");
        EXPECT_EQ(r.exit_code, 1) << r.output;
        EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    }
    EXPECT_EQ(read_all(db).size(), 3u);
    EXPECT_EQ(testing::run_cli({"history"}, dir.path + "/log").exit_code, 2);
}

}  // namespace
}  // namespace trainopt
