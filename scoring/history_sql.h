// The SQLite helpers the history's modules share (history_db.cpp, batch_db.cpp): a statement
// finalized on scope exit, a transaction rolled back unless committed, errors that name the
// database, and values always bound as parameters. Internal to trainopt_history.
#pragma once

#include <sqlite3.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "contract/result.h"
#include "scoring/history_db.h"

namespace trainopt {

// A prepared statement, finalized when it goes out of scope.
struct Statement {
    sqlite3_stmt* stmt = nullptr;
    ~Statement() { sqlite3_finalize(stmt); }
};

// A transaction rolled back unless committed.
struct Transaction {
    sqlite3* db = nullptr;
    bool open = false;
    ~Transaction() {
        if (open) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
};

class Sql {
  public:
    explicit Sql(const HistoryDb& db) : db_(db.handle()), path_(db.path()) {}

    // "history PATH: what failed: SQLite's message".
    std::string error(const std::string& what) const {
        return "history " + path_ + ": " + what + ": " + sqlite3_errmsg(db_);
    }

    Status exec(const char* sql, const std::string& what) const {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            return failure(error(what));
        return {};
    }

    Status prepare(const char* sql, Statement& st, const std::string& what) const {
        if (sqlite3_prepare_v2(db_, sql, -1, &st.stmt, nullptr) != SQLITE_OK)
            return failure(error(what));
        return {};
    }

    Status begin(Transaction& tx, const std::string& what) const {
        // IMMEDIATE takes the write lock now (waiting up to the busy timeout for another
        // writer), so two trainopt processes appending at once do not deadlock
        if (Status begun = exec("BEGIN IMMEDIATE", what); !begun) return begun;
        tx.db = db_;
        tx.open = true;
        return {};
    }

    Status commit(Transaction& tx, const std::string& what) const {
        if (Status done = exec("COMMIT", what); !done) return done;
        tx.open = false;
        return {};
    }

    // A single integer a query returns (PRAGMA application_id, user_version, a count).
    Result<int64_t> integer(const char* sql, const std::string& what) const {
        Statement st;
        if (Status prepared = prepare(sql, st, what); !prepared) return failure(prepared.error());
        if (sqlite3_step(st.stmt) != SQLITE_ROW) return failure(error(what));
        return sqlite3_column_int64(st.stmt, 0);
    }

  private:
    sqlite3* db_;
    std::string path_;
};

inline void bind_text(sqlite3_stmt* st, int index, const std::string& text) {
    sqlite3_bind_text(st, index, text.data(), (int)text.size(), SQLITE_TRANSIENT);
}

// SQLite stores NaN as NULL anyway; say so explicitly for every non-finite value.
inline void bind_real(sqlite3_stmt* st, int index, double v) {
    if (std::isfinite(v)) {
        sqlite3_bind_double(st, index, v);
    } else {
        sqlite3_bind_null(st, index);
    }
}

inline std::string column_text(sqlite3_stmt* st, int index) {
    const unsigned char* text = sqlite3_column_text(st, index);
    return text ? std::string((const char*)text, (size_t)sqlite3_column_bytes(st, index)) : "";
}

inline double column_real(sqlite3_stmt* st, int index) {
    return sqlite3_column_type(st, index) == SQLITE_NULL ? std::nan("")
                                                         : sqlite3_column_double(st, index);
}

// Inserts a run and its tasks inside the caller's transaction; returns the run's id.
Result<int64_t> insert_run_rows(const Sql& sql, HistoryDb& db, const HistoryRun& run,
                                const std::string& report_json);

}  // namespace trainopt
