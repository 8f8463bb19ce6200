// The history database through SQLite's C API: every value bound as a parameter (the strings come
// from reports, which anyone can edit), every write in a transaction.
#include "scoring/history_db.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>

#include "scoring/history_sql.h"
#include "scoring/report_format.h"

namespace trainopt {

namespace {

// The schema of version 1. "revision" is the commit (COMMIT is an SQL keyword).
constexpr const char* kSchema = R"sql(
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL,
  added_at TEXT NOT NULL,
  revision TEXT NOT NULL,
  submission TEXT NOT NULL,
  suite TEXT NOT NULL,
  suite_hash TEXT NOT NULL,
  machine TEXT NOT NULL,
  verdict TEXT NOT NULL,
  reps INTEGER NOT NULL,
  arithmetic_mean REAL,
  arithmetic_ci_low REAL,
  arithmetic_ci_high REAL,
  geometric_mean REAL,
  geometric_ci_low REAL,
  geometric_ci_high REAL,
  report TEXT NOT NULL
);
CREATE TABLE task_results (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  task TEXT NOT NULL,
  spec_hash TEXT NOT NULL,
  speedup REAL,
  ci_low REAL,
  ci_high REAL,
  submission_median_seconds REAL,
  baseline_median_seconds REAL,
  valid INTEGER NOT NULL CHECK (valid IN (0, 1)),
  PRIMARY KEY (run_id, task)
);
CREATE INDEX runs_by_time ON runs (created_at, id);
CREATE INDEX task_results_by_task ON task_results (task, spec_hash);
)sql";

// Added by version 2: the state of `trainopt batch` (scoring/batch_db.h). A batch is keyed by
// its output directory; its seed is a decimal string (SQLite integers are signed); a
// submission's run_id stays NULL until its report is final; calibrations are the baseline's
// timed runs, `at_unix` on the harness's wall clock.
constexpr const char* kBatchSchema = R"sql(
CREATE TABLE batches (
  id INTEGER PRIMARY KEY,
  out_dir TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  suite TEXT NOT NULL,
  reps INTEGER NOT NULL,
  seed TEXT NOT NULL,
  retime_every INTEGER NOT NULL,
  machine TEXT NOT NULL,
  finished_at TEXT
);
CREATE TABLE batch_submissions (
  batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  submission TEXT NOT NULL,
  name TEXT NOT NULL,
  run_id INTEGER REFERENCES runs(id),
  report_path TEXT,
  PRIMARY KEY (batch_id, position)
);
CREATE TABLE batch_calibrations (
  batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
  ordinal INTEGER NOT NULL,
  task TEXT NOT NULL,
  rep INTEGER NOT NULL,
  at_unix REAL NOT NULL,
  seconds REAL NOT NULL,
  PRIMARY KEY (batch_id, ordinal, task, rep)
);
)sql";

// What is at `path`: nothing (ENOENT), a regular file, or something refused.
Result<bool> regular_file_exists(const std::string& path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return false;
        return failure("history " + path + ": " + std::strerror(errno));
    }
    if (S_ISLNK(st.st_mode))
        return failure("history " + path + " is a symbolic link; give the file it points to");
    if (S_ISDIR(st.st_mode)) return failure("history " + path + " is a directory, not a database");
    if (!S_ISREG(st.st_mode)) return failure("history " + path + " is not a regular file");
    return true;
}

// Checks the header of an existing history: ours, and a schema this trainopt reads.
Status check_header(int64_t application_id, int64_t version, const std::string& path) {
    if (application_id != kHistoryApplicationId)
        return failure("history " + path +
                       " is an SQLite database but not a trainopt history (application_id " +
                       std::to_string(application_id) + ")");
    if (version > kHistorySchemaVersion)
        return failure("history " + path + " has schema version " + std::to_string(version) +
                       ", written by a newer trainopt (this one reads version " +
                       std::to_string(kHistorySchemaVersion) + ")");
    if (version < 1) return failure("history " + path + " has no schema version: damaged");
    return {};
}

// Creates the schema in an empty database, unless another process did it first.
Status create_schema(const Sql& sql) {
    // WAL: readers (`trainopt history`) never block the nightly append, and an append that is
    // cut short leaves the database as it was. The mode is stored in the file.
    if (Status wal = sql.exec("PRAGMA journal_mode=WAL", "cannot switch to WAL mode"); !wal)
        return wal;
    Transaction tx;
    if (Status begun = sql.begin(tx, "cannot start creating the schema"); !begun) return begun;
    Result<int64_t> objects =
        sql.integer("SELECT count(*) FROM sqlite_schema", "cannot read the database header");
    if (!objects) return failure(objects.error());
    if (*objects == 0) {
        if (Status created = sql.exec(kSchema, "cannot create the schema"); !created)
            return created;
        if (Status created = sql.exec(kBatchSchema, "cannot create the batch tables"); !created)
            return created;
        const std::string header =
            "PRAGMA application_id=" + std::to_string(kHistoryApplicationId) +
            "; PRAGMA user_version=" + std::to_string(kHistorySchemaVersion);
        if (Status set = sql.exec(header.c_str(), "cannot write the schema version"); !set)
            return set;
    }
    return sql.commit(tx, "cannot commit the schema");
}

// Brings a history of an older schema to the current one in one transaction: version 1 gains
// the batch tables. Another process migrating at the same time is waited for (BEGIN IMMEDIATE)
// and its work not repeated.
Status migrate_schema(const Sql& sql, int64_t version) {
    Transaction tx;
    if (Status begun = sql.begin(tx, "cannot start the schema migration"); !begun) return begun;
    Result<int64_t> now = sql.integer("PRAGMA user_version", "cannot read the database header");
    if (!now) return failure(now.error());
    if (*now == 1 && version == 1) {
        if (Status created = sql.exec(kBatchSchema, "cannot add the batch tables"); !created)
            return created;
        const std::string header = "PRAGMA user_version=" + std::to_string(kHistorySchemaVersion);
        if (Status set = sql.exec(header.c_str(), "cannot write the schema version"); !set)
            return set;
    }
    return sql.commit(tx, "cannot commit the schema migration");
}

}  // namespace

HistoryDb::HistoryDb(HistoryDb&& other) noexcept : db_(other.db_), path_(std::move(other.path_)) {
    other.db_ = nullptr;
}

HistoryDb& HistoryDb::operator=(HistoryDb&& other) noexcept {
    if (this != &other) {
        sqlite3_close(db_);
        db_ = other.db_;
        path_ = std::move(other.path_);
        other.db_ = nullptr;
    }
    return *this;
}

HistoryDb::~HistoryDb() {
    sqlite3_close(db_);
}

Result<HistoryRun> history_run_of(const ScoreReport& report, const std::string& commit,
                                  const std::string& machine_override) {
    if (!report.complete || report.verdict == Verdict::incomplete)
        return failure("the report is INCOMPLETE: only finished scores go into the history");
    HistoryRun run;
    run.created_at = report.created_at;
    run.commit = commit.empty() ? kUnknownHash : commit;
    run.submission = report.submission;
    run.suite = report.suite;
    run.suite_hash = report.suite_hash;
    run.machine = machine_override.empty() ? report.machine.key() : machine_override;
    run.verdict = to_string(report.verdict);
    run.reps = report.reps;
    run.summary = report.summary;
    for (const TaskReport& t : report.tasks) {
        HistoryTaskResult r;
        r.task = t.name;
        r.spec_hash = t.spec_hash;
        r.speedup = t.speedup;
        r.speedup_ci = t.speedup_ci;
        r.submission_median_seconds =
            t.submission_seconds.empty() ? std::nan("") : median(t.submission_seconds);
        r.baseline_median_seconds =
            t.baseline_seconds.empty() ? std::nan("") : median(t.baseline_seconds);
        r.valid = t.valid;
        run.tasks.push_back(r);
    }
    return run;
}

Result<HistoryDb> open_history(const std::string& path, HistoryOpen mode) {
    if (path.empty()) return failure("history: no database path given");
    Result<bool> exists = regular_file_exists(path);
    if (!exists) return failure(exists.error());
    if (!*exists && mode == HistoryOpen::existing_only)
        return failure("history " + path + " does not exist");
    sqlite3* handle = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW;
    if (mode == HistoryOpen::create_if_absent) flags |= SQLITE_OPEN_CREATE;
    const int opened = sqlite3_open_v2(path.c_str(), &handle, flags, nullptr);
    HistoryDb db(handle, path);  // closes the handle on every path below
    if (opened != SQLITE_OK)
        return failure("history " + path + ": cannot open: " +
                       (handle ? sqlite3_errmsg(handle) : sqlite3_errstr(opened)));
    sqlite3_extended_result_codes(handle, 1);
    sqlite3_busy_timeout(handle, 10000);  // another trainopt appending: wait for it
    const Sql sql(db);
    if (Status fk = sql.exec("PRAGMA foreign_keys=ON", "cannot enable foreign keys"); !fk)
        return failure(fk.error());
    // The first read of the file: a file that is not SQLite fails here ("file is not a database")
    Result<int64_t> application_id =
        sql.integer("PRAGMA application_id", "cannot read the database header");
    if (!application_id) return failure(application_id.error());
    Result<int64_t> version = sql.integer("PRAGMA user_version", "cannot read the database header");
    if (!version) return failure(version.error());
    Result<int64_t> objects =
        sql.integer("SELECT count(*) FROM sqlite_schema", "cannot read the database header");
    if (!objects) return failure(objects.error());
    if (*application_id == 0 && *version == 0 && *objects == 0) {
        if (mode == HistoryOpen::existing_only)
            return failure("history " + path + " is empty: it holds no runs yet");
        if (Status created = create_schema(sql); !created) return failure(created.error());
        application_id = sql.integer("PRAGMA application_id", "cannot read the database header");
        if (!application_id) return failure(application_id.error());
        version = sql.integer("PRAGMA user_version", "cannot read the database header");
        if (!version) return failure(version.error());
    }
    if (Status ours = check_header(*application_id, *version, path); !ours)
        return failure(ours.error());
    if (*version < kHistorySchemaVersion) {
        if (Status migrated = migrate_schema(sql, *version); !migrated)
            return failure(migrated.error());
    }
    return db;
}

Result<int64_t> insert_run_rows(const Sql& sql, HistoryDb& db, const HistoryRun& run,
                                const std::string& report_json) {
    Statement insert_run;
    if (Status prepared = sql.prepare(
            "INSERT INTO runs (created_at, added_at, revision, submission, suite, suite_hash, "
            "machine, verdict, reps, arithmetic_mean, arithmetic_ci_low, arithmetic_ci_high, "
            "geometric_mean, geometric_ci_low, geometric_ci_high, report) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            insert_run, "cannot prepare the run's row");
        !prepared)
        return failure(prepared.error());
    sqlite3_stmt* st = insert_run.stmt;
    bind_text(st, 1, run.created_at);
    bind_text(st, 2, utc_now());
    bind_text(st, 3, run.commit);
    bind_text(st, 4, run.submission);
    bind_text(st, 5, run.suite);
    bind_text(st, 6, run.suite_hash);
    bind_text(st, 7, run.machine);
    bind_text(st, 8, run.verdict);
    sqlite3_bind_int(st, 9, run.reps);
    bind_real(st, 10, run.summary.arithmetic);
    bind_real(st, 11, run.summary.arithmetic_ci.low);
    bind_real(st, 12, run.summary.arithmetic_ci.high);
    bind_real(st, 13, run.summary.geometric);
    bind_real(st, 14, run.summary.geometric_ci.low);
    bind_real(st, 15, run.summary.geometric_ci.high);
    bind_text(st, 16, report_json);
    if (sqlite3_step(st) != SQLITE_DONE) return failure(sql.error("cannot add the run"));
    const int64_t run_id = sqlite3_last_insert_rowid(db.handle());

    Statement insert_task;
    if (Status prepared = sql.prepare(
            "INSERT INTO task_results (run_id, task, spec_hash, speedup, ci_low, ci_high, "
            "submission_median_seconds, baseline_median_seconds, valid) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            insert_task, "cannot prepare the tasks' rows");
        !prepared)
        return failure(prepared.error());
    for (const HistoryTaskResult& t : run.tasks) {
        sqlite3_stmt* ts = insert_task.stmt;
        sqlite3_reset(ts);
        sqlite3_clear_bindings(ts);
        sqlite3_bind_int64(ts, 1, run_id);
        bind_text(ts, 2, t.task);
        bind_text(ts, 3, t.spec_hash);
        bind_real(ts, 4, t.speedup);
        bind_real(ts, 5, t.speedup_ci.low);
        bind_real(ts, 6, t.speedup_ci.high);
        bind_real(ts, 7, t.submission_median_seconds);
        bind_real(ts, 8, t.baseline_median_seconds);
        sqlite3_bind_int(ts, 9, t.valid ? 1 : 0);
        if (sqlite3_step(ts) != SQLITE_DONE) return failure(sql.error("cannot add task " + t.task));
    }
    return run_id;
}

Result<int64_t> append_run(HistoryDb& db, const HistoryRun& run, const std::string& report_json) {
    const Sql sql(db);
    Transaction tx;
    if (Status begun = sql.begin(tx, "cannot start the append"); !begun)
        return failure(begun.error());
    Result<int64_t> run_id = insert_run_rows(sql, db, run, report_json);
    if (!run_id) return run_id;
    if (Status done = sql.commit(tx, "cannot commit the run"); !done) return failure(done.error());
    return run_id;
}

Result<std::vector<HistoryRun>> read_runs(HistoryDb& db, const HistoryFilter& filter) {
    const Sql sql(db);
    // one read transaction: the runs and their tasks from the same snapshot
    if (Status begun = sql.exec("BEGIN", "cannot start reading"); !begun)
        return failure(begun.error());
    Transaction tx{db.handle(), true};
    Statement runs;
    if (Status prepared = sql.prepare(
            "SELECT id, created_at, revision, submission, suite, suite_hash, machine, verdict, "
            "reps, arithmetic_mean, arithmetic_ci_low, arithmetic_ci_high, geometric_mean, "
            "geometric_ci_low, geometric_ci_high FROM runs "
            "WHERE (?1 = '' OR suite = ?1) AND (?2 = '' OR submission = ?2) "
            "ORDER BY created_at, id",
            runs, "cannot prepare the query of runs");
        !prepared)
        return failure(prepared.error());
    bind_text(runs.stmt, 1, filter.suite);
    bind_text(runs.stmt, 2, filter.submission);
    std::vector<HistoryRun> out;
    std::map<int64_t, size_t> index_of;
    int step;
    while ((step = sqlite3_step(runs.stmt)) == SQLITE_ROW) {
        sqlite3_stmt* st = runs.stmt;
        HistoryRun run;
        run.id = sqlite3_column_int64(st, 0);
        run.created_at = column_text(st, 1);
        run.commit = column_text(st, 2);
        run.submission = column_text(st, 3);
        run.suite = column_text(st, 4);
        run.suite_hash = column_text(st, 5);
        run.machine = column_text(st, 6);
        run.verdict = column_text(st, 7);
        run.reps = sqlite3_column_int(st, 8);
        run.summary.arithmetic = column_real(st, 9);
        run.summary.arithmetic_ci = {column_real(st, 10), column_real(st, 11)};
        run.summary.geometric = column_real(st, 12);
        run.summary.geometric_ci = {column_real(st, 13), column_real(st, 14)};
        index_of[run.id] = out.size();
        out.push_back(std::move(run));
    }
    if (step != SQLITE_DONE) return failure(sql.error("cannot read the runs"));

    Statement tasks;
    if (Status prepared = sql.prepare(
            "SELECT run_id, task, spec_hash, speedup, ci_low, ci_high, "
            "submission_median_seconds, baseline_median_seconds, valid FROM task_results "
            "WHERE (?1 = '' OR task = ?1) ORDER BY run_id, rowid",
            tasks, "cannot prepare the query of tasks");
        !prepared)
        return failure(prepared.error());
    bind_text(tasks.stmt, 1, filter.task);
    while ((step = sqlite3_step(tasks.stmt)) == SQLITE_ROW) {
        sqlite3_stmt* st = tasks.stmt;
        const auto run = index_of.find(sqlite3_column_int64(st, 0));
        if (run == index_of.end()) continue;  // a run the filter left out
        HistoryTaskResult t;
        t.task = column_text(st, 1);
        t.spec_hash = column_text(st, 2);
        t.speedup = column_real(st, 3);
        t.speedup_ci = {column_real(st, 4), column_real(st, 5)};
        t.submission_median_seconds = column_real(st, 6);
        t.baseline_median_seconds = column_real(st, 7);
        t.valid = sqlite3_column_int(st, 8) != 0;
        out[run->second].tasks.push_back(std::move(t));
    }
    if (step != SQLITE_DONE) return failure(sql.error("cannot read the tasks"));
    if (Status done = sql.commit(tx, "cannot finish reading"); !done) return failure(done.error());
    if (!filter.task.empty()) {
        // only the runs that have the task asked for
        std::erase_if(out, [](const HistoryRun& run) { return run.tasks.empty(); });
    }
    return out;
}

}  // namespace trainopt
