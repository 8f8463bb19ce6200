// The batch tables through SQLite's C API (scoring/history_sql.h): every value bound as a
// parameter (submission paths are untrusted text), every write in a transaction.
#include "scoring/batch_db.h"

#include <charconv>
#include <map>

#include "scoring/history_sql.h"
#include "scoring/report_format.h"

namespace trainopt {

namespace {

Result<uint64_t> parse_seed(const std::string& text, const std::string& path) {
    uint64_t seed = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seed);
    if (ec != std::errc() || end != text.data() + text.size())
        return failure("history " + path + ": a batch's seed is not a number: damaged");
    return seed;
}

Status read_entries(const Sql& sql, BatchRecord& batch) {
    Statement st;
    if (Status prepared = sql.prepare(
            "SELECT position, submission, name, run_id, report_path FROM batch_submissions "
            "WHERE batch_id = ?1 ORDER BY position",
            st, "cannot prepare the query of a batch's submissions");
        !prepared)
        return prepared;
    sqlite3_bind_int64(st.stmt, 1, batch.id);
    int step;
    while ((step = sqlite3_step(st.stmt)) == SQLITE_ROW) {
        BatchEntry e;
        e.position = sqlite3_column_int(st.stmt, 0);
        e.submission = column_text(st.stmt, 1);
        e.name = column_text(st.stmt, 2);
        e.run_id = sqlite3_column_int64(st.stmt, 3);  // NULL reads as 0
        e.report_path = column_text(st.stmt, 4);
        batch.entries.push_back(std::move(e));
    }
    if (step != SQLITE_DONE) return failure(sql.error("cannot read a batch's submissions"));
    return {};
}

}  // namespace

Result<std::optional<BatchRecord>> find_batch(HistoryDb& db, const std::string& out_dir) {
    const Sql sql(db);
    Statement st;
    if (Status prepared =
            sql.prepare("SELECT id, out_dir, created_at, suite, reps, seed, retime_every, machine, "
                        "finished_at IS NOT NULL FROM batches WHERE out_dir = ?1",
                        st, "cannot prepare the query of batches");
        !prepared)
        return failure(prepared.error());
    bind_text(st.stmt, 1, out_dir);
    const int step = sqlite3_step(st.stmt);
    if (step == SQLITE_DONE) return std::optional<BatchRecord>();
    if (step != SQLITE_ROW) return failure(sql.error("cannot read the batches"));
    BatchRecord batch;
    batch.id = sqlite3_column_int64(st.stmt, 0);
    batch.out_dir = column_text(st.stmt, 1);
    batch.created_at = column_text(st.stmt, 2);
    batch.suite = column_text(st.stmt, 3);
    batch.reps = sqlite3_column_int(st.stmt, 4);
    Result<uint64_t> seed = parse_seed(column_text(st.stmt, 5), db.path());
    if (!seed) return failure(seed.error());
    batch.seed = *seed;
    batch.retime_every = sqlite3_column_int(st.stmt, 6);
    batch.machine = column_text(st.stmt, 7);
    batch.finished = sqlite3_column_int(st.stmt, 8) != 0;
    if (Status read = read_entries(sql, batch); !read) return failure(read.error());
    return std::optional<BatchRecord>(std::move(batch));
}

Result<int64_t> create_batch(HistoryDb& db, const BatchRecord& batch) {
    const Sql sql(db);
    Transaction tx;
    if (Status begun = sql.begin(tx, "cannot start storing the batch"); !begun)
        return failure(begun.error());
    Statement insert;
    if (Status prepared = sql.prepare(
            "INSERT INTO batches (out_dir, created_at, suite, reps, seed, retime_every, machine) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            insert, "cannot prepare the batch's row");
        !prepared)
        return failure(prepared.error());
    bind_text(insert.stmt, 1, batch.out_dir);
    bind_text(insert.stmt, 2, batch.created_at);
    bind_text(insert.stmt, 3, batch.suite);
    sqlite3_bind_int(insert.stmt, 4, batch.reps);
    bind_text(insert.stmt, 5, std::to_string(batch.seed));
    sqlite3_bind_int(insert.stmt, 6, batch.retime_every);
    bind_text(insert.stmt, 7, batch.machine);
    if (sqlite3_step(insert.stmt) != SQLITE_DONE) return failure(sql.error("cannot add the batch"));
    const int64_t id = sqlite3_last_insert_rowid(db.handle());
    Statement entry;
    if (Status prepared =
            sql.prepare("INSERT INTO batch_submissions (batch_id, position, submission, name) "
                        "VALUES (?1, ?2, ?3, ?4)",
                        entry, "cannot prepare the batch's submissions");
        !prepared)
        return failure(prepared.error());
    for (const BatchEntry& e : batch.entries) {
        sqlite3_reset(entry.stmt);
        sqlite3_clear_bindings(entry.stmt);
        sqlite3_bind_int64(entry.stmt, 1, id);
        sqlite3_bind_int(entry.stmt, 2, e.position);
        bind_text(entry.stmt, 3, e.submission);
        bind_text(entry.stmt, 4, e.name);
        if (sqlite3_step(entry.stmt) != SQLITE_DONE)
            return failure(sql.error("cannot add a submission of the batch"));
    }
    if (Status done = sql.commit(tx, "cannot commit the batch"); !done)
        return failure(done.error());
    return id;
}

Result<int> record_calibration(HistoryDb& db, int64_t batch_id,
                               const std::vector<CalibrationSample>& samples) {
    const Sql sql(db);
    Transaction tx;
    if (Status begun = sql.begin(tx, "cannot start storing a calibration"); !begun)
        return failure(begun.error());
    Statement next;
    if (Status prepared = sql.prepare(
            "SELECT coalesce(max(ordinal) + 1, 0) FROM batch_calibrations WHERE batch_id = ?1",
            next, "cannot prepare the calibrations' ordinal");
        !prepared)
        return failure(prepared.error());
    sqlite3_bind_int64(next.stmt, 1, batch_id);
    if (sqlite3_step(next.stmt) != SQLITE_ROW)
        return failure(sql.error("cannot read the calibrations' ordinal"));
    const int ordinal = sqlite3_column_int(next.stmt, 0);
    Statement insert;
    if (Status prepared = sql.prepare(
            "INSERT INTO batch_calibrations (batch_id, ordinal, task, rep, at_unix, seconds) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            insert, "cannot prepare a calibration's rows");
        !prepared)
        return failure(prepared.error());
    for (const CalibrationSample& s : samples) {
        sqlite3_reset(insert.stmt);
        sqlite3_clear_bindings(insert.stmt);
        sqlite3_bind_int64(insert.stmt, 1, batch_id);
        sqlite3_bind_int(insert.stmt, 2, ordinal);
        bind_text(insert.stmt, 3, s.task);
        sqlite3_bind_int(insert.stmt, 4, s.rep);
        bind_real(insert.stmt, 5, s.at_unix);
        bind_real(insert.stmt, 6, s.seconds);
        if (sqlite3_step(insert.stmt) != SQLITE_DONE)
            return failure(sql.error("cannot add a calibration"));
    }
    if (Status done = sql.commit(tx, "cannot commit a calibration"); !done)
        return failure(done.error());
    return ordinal;
}

Result<std::vector<std::vector<CalibrationSample>>> read_calibrations(HistoryDb& db,
                                                                      int64_t batch_id) {
    const Sql sql(db);
    Statement st;
    if (Status prepared =
            sql.prepare("SELECT ordinal, task, rep, at_unix, seconds FROM batch_calibrations "
                        "WHERE batch_id = ?1 ORDER BY ordinal, rowid",
                        st, "cannot prepare the query of calibrations");
        !prepared)
        return failure(prepared.error());
    sqlite3_bind_int64(st.stmt, 1, batch_id);
    std::vector<std::vector<CalibrationSample>> out;
    std::map<int, size_t> index_of;
    int step;
    while ((step = sqlite3_step(st.stmt)) == SQLITE_ROW) {
        const int ordinal = sqlite3_column_int(st.stmt, 0);
        if (!index_of.count(ordinal)) {
            index_of[ordinal] = out.size();
            out.emplace_back();
        }
        out[index_of[ordinal]].push_back({column_text(st.stmt, 1), sqlite3_column_int(st.stmt, 2),
                                          column_real(st.stmt, 3), column_real(st.stmt, 4)});
    }
    if (step != SQLITE_DONE) return failure(sql.error("cannot read the calibrations"));
    return out;
}

Result<int64_t> record_batch_result(HistoryDb& db, int64_t batch_id, int position,
                                    const HistoryRun& run, const std::string& report_json,
                                    const std::string& report_path) {
    const Sql sql(db);
    Transaction tx;
    if (Status begun = sql.begin(tx, "cannot start storing a batch result"); !begun)
        return failure(begun.error());
    Result<int64_t> run_id = insert_run_rows(sql, db, run, report_json);
    if (!run_id) return run_id;
    Statement update;
    if (Status prepared = sql.prepare("UPDATE batch_submissions SET run_id = ?1, report_path = ?2 "
                                      "WHERE batch_id = ?3 AND position = ?4",
                                      update, "cannot prepare a batch result");
        !prepared)
        return failure(prepared.error());
    sqlite3_bind_int64(update.stmt, 1, *run_id);
    bind_text(update.stmt, 2, report_path);
    sqlite3_bind_int64(update.stmt, 3, batch_id);
    sqlite3_bind_int(update.stmt, 4, position);
    if (sqlite3_step(update.stmt) != SQLITE_DONE || sqlite3_changes(db.handle()) != 1)
        return failure(sql.error("cannot mark submission " + std::to_string(position) +
                                 " of the batch as scored"));
    if (Status done = sql.commit(tx, "cannot commit a batch result"); !done)
        return failure(done.error());
    return run_id;
}

Status finish_batch(HistoryDb& db, int64_t batch_id) {
    const Sql sql(db);
    Statement update;
    if (Status prepared = sql.prepare("UPDATE batches SET finished_at = ?1 WHERE id = ?2", update,
                                      "cannot prepare finishing the batch");
        !prepared)
        return prepared;
    bind_text(update.stmt, 1, utc_now());
    sqlite3_bind_int64(update.stmt, 2, batch_id);
    if (sqlite3_step(update.stmt) != SQLITE_DONE)
        return failure(sql.error("cannot mark the batch finished"));
    return {};
}

Result<Leaderboard> read_leaderboard(HistoryDb& db, const std::string& out_dir) {
    std::string key = out_dir;
    if (key.empty()) {
        const Sql sql(db);
        Statement latest;
        if (Status prepared =
                sql.prepare("SELECT out_dir FROM batches ORDER BY created_at DESC, id DESC LIMIT 1",
                            latest, "cannot prepare the query of batches");
            !prepared)
            return failure(prepared.error());
        const int step = sqlite3_step(latest.stmt);
        if (step == SQLITE_DONE) return failure("history " + db.path() + " holds no batch");
        if (step != SQLITE_ROW) return failure(sql.error("cannot read the batches"));
        key = column_text(latest.stmt, 0);
    }
    Result<std::optional<BatchRecord>> batch = find_batch(db, key);
    if (!batch) return failure(batch.error());
    if (!*batch) return failure("history " + db.path() + " holds no batch writing to " + key);
    Leaderboard board;
    board.out_dir = (*batch)->out_dir;
    board.suite = (*batch)->suite;
    board.created_at = (*batch)->created_at;
    board.finished = (*batch)->finished;
    Result<std::vector<HistoryRun>> runs = read_runs(db, {});
    if (!runs) return failure(runs.error());
    std::map<int64_t, const HistoryRun*> run_of;
    for (const HistoryRun& run : *runs) run_of[run.id] = &run;
    for (const BatchEntry& e : (*batch)->entries) {
        const auto run = run_of.find(e.run_id);
        if (e.run_id == 0 || run == run_of.end()) {
            board.pending++;
            continue;
        }
        board.entries.push_back({e.position, e.submission, e.report_path, *run->second});
    }
    return board;
}

}  // namespace trainopt
