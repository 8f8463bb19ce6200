#include "harness/history_command.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "harness/cli_error.h"
#include "harness/process.h"
#include "scoring/history_db.h"
#include "scoring/history_render.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

// `git describe --always --dirty` in the trainopt checkout, or "" when it fails. The checkout is
// trusted (trainopt is built from it); a submission's directory is not, and git is never run
// there (its .git/config could name commands for git to run).
std::string describe_checkout() {
    const std::string dir = TRAINOPT_SOURCE_DIR;
    std::error_code ec;
    if (!std::filesystem::exists(dir + "/.git", ec) || !std::filesystem::exists("/usr/bin/git"))
        return "";
    char log[] = "/tmp/trainopt-describe-XXXXXX";
    const int fd = mkstemp(log);
    if (fd < 0) return "";
    close(fd);
    SpawnSpec spec;
    spec.argv = {"/usr/bin/git", "-C", dir, "describe", "--always", "--dirty"};
    spec.env = {"PATH=/usr/bin:/bin", "HOME=/nonexistent", "GIT_CONFIG_NOSYSTEM=1",
                "GIT_TERMINAL_PROMPT=0"};
    spec.output_path = log;
    spec.timeout_seconds = 20;
    Result<ProcessOutcome> outcome = run_process(spec);
    std::string out = file_tail(log, 200);
    unlink(log);
    if (!outcome || !outcome->succeeded()) return "";
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    // one line of the usual characters, or nothing: stderr shares the file
    if (out.empty() || out.find_first_of("\n ") != std::string::npos) return "";
    return out;
}

}  // namespace

std::string run_commit(const std::string& commit) {
    if (!commit.empty()) return commit;
    const std::string described = describe_checkout();
    return described.empty() ? kUnknownHash : described;
}

Status record_in_history(const std::string& db_path, const ScoreReport& report,
                         const std::string& commit, const std::string& machine) {
    Result<HistoryRun> run = history_run_of(report, commit, machine);
    if (!run) return failure("history " + db_path + ": " + run.error());
    Result<HistoryDb> db = open_history(db_path, HistoryOpen::create_if_absent);
    if (!db) return failure(db.error());
    const std::string json =
        report_to_json(report).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    Result<int64_t> id = append_run(*db, *run, json);
    if (!id) return failure(id.error());
    printf("history: run %lld added to %s (commit %s, machine %s)\n", (long long)*id,
           terminal_safe_line(db_path).c_str(), terminal_safe_line(run->commit).c_str(),
           terminal_safe_line(run->machine).c_str());
    return {};
}

int run_history_add(const HistoryAddCommand& c) {
    Result<ScoreReport> report = load_report(c.report);
    if (!report) return fail(report.error());
    if (Status recorded = record_in_history(c.db, *report, c.commit, c.machine); !recorded)
        return fail(recorded.error());
    return 0;
}

int run_history_show(const HistoryShowCommand& c) {
    Result<HistoryDb> db = open_history(c.db, HistoryOpen::existing_only);
    if (!db) return fail(db.error());
    HistoryView view;
    view.database = c.db;
    view.filter = {c.suite, c.task, c.submission};
    Result<std::vector<HistoryRun>> runs = read_runs(*db, view.filter);
    if (!runs) return fail(runs.error());
    view.runs = runs->size();
    view.series = history_series(*runs, view.options);
    const std::string markdown = history_to_markdown(view);
    if (!c.markdown_path.empty()) {
        if (Status written = write_file_atomic(c.markdown_path, markdown); !written)
            return fail(written.error());
    }
    if (!c.html_path.empty()) {
        if (Status written = write_file_atomic(c.html_path, history_to_html(view)); !written)
            return fail(written.error());
    }
    printf("%s", terminal_safe(markdown).c_str());
    return 0;
}

}  // namespace trainopt
