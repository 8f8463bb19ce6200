#include "harness/batch.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>

#include "harness/evaluation.h"
#include "harness/history_command.h"
#include "harness/leaderboard_command.h"
#include "harness/process.h"
#include "harness/safe_file.h"
#include "harness/score_report.h"
#include "harness/scored_suite.h"
#include "harness/session.h"
#include "harness/trusted_inputs.h"
#include "scoring/baseline_drift.h"
#include "scoring/batch_db.h"
#include "scoring/machine_id.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

// A submission run is never killed sooner than this, however fast the baseline of the task.
constexpr double kMinKillSeconds = 60;
constexpr size_t kMaxListBytes = (size_t)1 << 20;
constexpr size_t kMaxNameChars = 60;

double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

using Seeds = std::vector<std::vector<uint64_t>>;  // [task][rep]

// Everything the submissions of a batch share.
struct BatchSession {
    const BatchOptions& options;
    TrustedInputs trusted;
    SuiteToScore scored;
    HarnessContext ctx;
    TrainerBuild baseline;
    MachinePeaks peaks;
    HistoryDb db;
    BatchRecord batch;
    std::string commit;
    Seeds seeds;
    std::vector<TaskData> data;                        // per task, generated once
    std::vector<std::vector<BaselineRun>> references;  // [task][rep]: the first calibration's
    Calibration first;                                 // its times
    int retimings = 0;  // calibrations of the batch so far: which seed and task re-time first
};

// One submission between its build and its final report.
struct SubmissionRun {
    BatchEntry entry;
    PreparedSubmission prepared;
    std::vector<TaskEvaluation> evals;    // per task scored so far
    std::vector<std::vector<double>> at;  // [task][rep]: mid-run time of each repetition
};

}  // namespace

// ---- the batch's record ----

Result<std::string> prepare_batch_out_dir(const std::string& out_dir) {
    if (out_dir.empty()) return failure("batch: give the output directory (--out)");
    struct stat st {};
    if (lstat(out_dir.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode))
            return failure("batch: " + out_dir + " is a symbolic link; give the directory itself");
        if (!S_ISDIR(st.st_mode)) return failure("batch: " + out_dir + " is not a directory");
    } else {
        std::error_code ec;
        fs::create_directories(fs::path(out_dir).parent_path().empty()
                                   ? fs::path(".")
                                   : fs::path(out_dir).parent_path(),
                               ec);
        // reports carry the batch's seeds: private to the harness's user
        if (mkdir(out_dir.c_str(), 0700) != 0)
            return failure("batch: cannot create " + out_dir + ": " + strerror(errno));
    }
    return fs::absolute(out_dir).lexically_normal().string();
}

Result<int> lock_batch_out_dir(const std::string& out_dir) {
    const std::string path = out_dir + "/batch.lock";
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return failure("batch: cannot open " + path + ": " + strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return failure("batch: another trainopt batch is writing " + out_dir);
    }
    return fd;
}

namespace {

BatchRecord new_batch_record(const BatchOptions& o, const std::string& key) {
    BatchRecord batch;
    batch.out_dir = key;
    batch.created_at = utc_now();
    batch.suite = o.score.suite;
    batch.reps = o.score.reps;
    batch.seed = o.score.seed ? *o.score.seed : random_seed();  // never shown to a submission
    batch.retime_every = o.retime_every;
    batch.machine = identify_machine().key();
    for (size_t i = 0; i < o.submissions.size(); i++) {
        BatchEntry e;
        e.position = (int)i;
        e.submission = o.submissions[i];
        e.name = batch_report_name((int)i, o.submissions[i]);
        batch.entries.push_back(e);
    }
    return batch;
}

}  // namespace

Result<BatchRecord> open_batch(HistoryDb& db, const BatchOptions& o, const std::string& key) {
    Result<std::optional<BatchRecord>> found = find_batch(db, key);
    if (!found) return failure(found.error());
    if (!*found) {
        BatchRecord batch = new_batch_record(o, key);
        Result<int64_t> id = create_batch(db, batch);
        if (!id) return failure(id.error());
        batch.id = *id;
        spdlog::info("batch: {} submissions, suite {}, {} reps", batch.entries.size(), batch.suite,
                     batch.reps);
        return batch;
    }
    BatchRecord& batch = **found;
    std::vector<std::string> stored;
    for (const BatchEntry& e : batch.entries) stored.push_back(e.submission);
    if (stored != o.submissions || batch.suite != o.score.suite || batch.reps != o.score.reps)
        return failure("batch: " + key + " holds a batch of other " +
                       (stored != o.submissions ? std::string("submissions")
                        : batch.suite != o.score.suite
                            ? "suite (" + batch.suite + ")"
                            : "repetitions (" + std::to_string(batch.reps) + ")") +
                       "; resume it with the same command, or give another --out");
    if (o.score.seed && *o.score.seed != batch.seed)
        return failure("batch: " + key +
                       " was started with another --seed; resume it without --seed or with the "
                       "same one, or give another --out");
    const auto scored = std::count_if(batch.entries.begin(), batch.entries.end(),
                                      [](const BatchEntry& e) { return e.run_id != 0; });
    spdlog::info("batch: resuming, {} of {} submissions scored", scored, batch.entries.size());
    return std::move(batch);
}

namespace {

// ---- calibrations ----

// One timed run of the pristine baseline on task t with repetition r's seed.
Result<BaselineRun> time_baseline(BatchSession& s, size_t t, size_t r, BaselineTiming& timing) {
    const TaskSpec& task = s.scored.suite.tasks[t];
    const double started = unix_now();
    Result<BaselineRun> base = run_baseline(s.ctx, s.baseline, task, s.data[t], s.seeds[t][r]);
    if (interrupted()) return failure("interrupted while timing the baseline");
    if (!base) return failure("task " + task.name + ": " + base.error());
    timing = {started + base->seconds / 2, base->seconds};
    spdlog::info("baseline [{} rep {}/{}]: {:.2f} s", task.name, r + 1, s.seeds[t].size(),
                 base->seconds);
    return base;
}

// The first calibration: the baseline on every task and seed, each run's outputs kept as the
// reference every submission's run of that seed is verified against, its times as the
// baseline times every report starts from.
Status calibrate_baseline(BatchSession& s) {
    const std::vector<TaskSpec>& tasks = s.scored.suite.tasks;
    s.first.assign(tasks.size(), {});
    s.references.assign(tasks.size(), {});
    std::vector<CalibrationSample> samples;
    for (size_t t = 0; t < tasks.size(); t++) {
        for (size_t r = 0; r < s.seeds[t].size(); r++) {
            BaselineTiming timing;
            Result<BaselineRun> base = time_baseline(s, t, r, timing);
            if (!base) return failure(base.error());
            s.first[t].push_back(timing);
            samples.push_back({tasks[t].name, (int)r, timing.at_unix, timing.seconds});
            s.references[t].push_back(std::move(*base));
        }
    }
    Result<int> ordinal = record_calibration(s.db, s.batch.id, samples);
    if (!ordinal) return failure(ordinal.error());
    return {};
}

// A re-timing: the baseline once per task, on the next seed in turn, starting at the next task
// in turn (so the run right after a block's last submission is not always the same task's).
// When its factor strays from the previous one by more than kDriftRecheck, every task runs once
// more, on the following seed, and the smaller factor is kept: a slower baseline raises the
// block's ratios, so a disagreement is settled against the submissions (docs/batch.md).
Result<DriftPoint> retime_baseline(BatchSession& s, const DriftPoint& previous) {
    const std::vector<TaskSpec>& tasks = s.scored.suite.tasks;
    const size_t reps = (size_t)s.batch.reps;
    std::vector<CalibrationSample> samples;
    DriftPoint kept;
    for (size_t attempt = 0; attempt < 2; attempt++) {
        const size_t r = ((size_t)s.retimings + attempt) % reps;
        std::vector<BaselineTiming> runs(tasks.size());
        for (size_t i = 0; i < tasks.size(); i++) {
            const size_t t = (i + (size_t)s.retimings) % tasks.size();
            Result<BaselineRun> base = time_baseline(s, t, r, runs[t]);
            if (!base) return failure(base.error());
            samples.push_back({tasks[t].name, (int)r, runs[t].at_unix, runs[t].seconds});
        }
        const DriftPoint point = drift_point(s.first, runs);
        if (!std::isfinite(point.factor))
            return failure("the baseline's re-timing has no usable time");
        if (attempt == 0 || point.factor < kept.factor) kept = point;
        if (!drift_needs_recheck(previous.factor, point.factor)) break;
        if (attempt == 0)
            spdlog::info(
                "batch: the baseline is {:+.1f}% against the first calibration, {:+.1f}% "
                "at the last timing; timing it once more",
                100 * (point.factor - 1), 100 * (previous.factor - 1));
    }
    Result<int> ordinal = record_calibration(s.db, s.batch.id, samples);
    if (!ordinal) return failure(ordinal.error());
    s.retimings++;
    return kept;
}

// ---- a submission ----

// The report files of a submission in the output directory.
ScoreOptions report_options(const BatchSession& s, const BatchEntry& entry) {
    ScoreOptions so = s.options.score;
    so.submission = entry.submission;
    so.command = "batch";
    so.seed = s.batch.seed;
    const std::string stem = s.batch.out_dir + "/" + entry.name;
    so.json_path = stem + ".json";
    so.markdown_path = stem + ".md";
    so.html_path = stem + ".html";
    return so;
}

// Builds (or takes from the build cache) and audits the submission, in its own work directory.
Result<SubmissionRun> prepare(BatchSession& s, const BatchEntry& entry) {
    SubmissionRun run;
    run.entry = entry;
    const std::string dir = s.ctx.workdir + "/submission-" + std::to_string(entry.position);
    if (mkdir(dir.c_str(), 0711) != 0 || chmod(dir.c_str(), 0711) != 0)
        return failure("cannot create " + dir + ": " + strerror(errno));
    HarnessContext ctx = s.ctx;
    ctx.workdir = dir;
    spdlog::info("batch: building {} ({}/{})", terminal_safe_line(entry.submission),
                 entry.position + 1, s.batch.entries.size());
    Result<PreparedSubmission> prepared =
        prepare_submission(report_options(s, entry), ctx, s.baseline);
    release_scratch(dir);  // the trainer stays in dir/private; the sources and build tree go
    if (interrupted()) return failure("interrupted during a build");
    if (!prepared) {
        // one unusable submission (a path that is not a submission) does not stop the batch
        run.prepared.rejected.push_back(prepared.error());
        return run;
    }
    run.prepared = std::move(*prepared);
    return run;
}

// The kill time of a submission's runs on task t: kill_factor times the task's slowest
// baseline run in the first calibration, within [kMinKillSeconds, --timeout].
double kill_seconds(const BatchSession& s, size_t t) {
    double slowest = 0;
    for (const BaselineTiming& b : s.first[t]) slowest = std::max(slowest, b.seconds);
    return std::min(s.options.score.timeout_seconds,
                    std::max(kMinKillSeconds, s.options.kill_factor * slowest));
}

// Runs the submission on every task and seed against the references (the first invalid
// repetition ends a task, as in a score). Fails only on an interrupt.
Status run_submission_tasks(BatchSession& s, SubmissionRun& run) {
    const std::vector<TaskSpec>& tasks = s.scored.suite.tasks;
    const std::string name = terminal_safe_line(run.entry.submission);
    for (size_t t = 0; t < tasks.size(); t++) {
        HarnessContext ctx = s.ctx;
        ctx.timeout_seconds = kill_seconds(s, t);
        TaskEvaluation eval;
        eval.task = tasks[t];
        run.at.emplace_back();
        for (size_t r = 0; r < s.seeds[t].size(); r++) {
            const double started = unix_now();
            Result<RepResult> rep =
                run_submission(ctx, run.prepared.trainer, tasks[t], s.data[t], s.seeds[t][r],
                               s.references[t][r], [](const std::string&) {});
            if (!rep) return failure(rep.error());
            run.at.back().push_back(started + rep->submission_seconds / 2);
            spdlog::info("{} [{} rep {}/{}]: {:.3f} s, {}", name, tasks[t].name, r + 1,
                         s.seeds[t].size(), rep->submission_seconds,
                         rep->verification.valid()
                             ? "verified"
                             : "INVALID: " + rep->verification.reasons.front());
            record_repetition(eval, std::move(*rep));
            if (!eval.valid) break;
        }
        run.evals.push_back(std::move(eval));
    }
    return {};
}

// Each repetition's baseline time: the first calibration's time of its task and seed, scaled
// by the drift interpolated between the points around the run (none after: `before`'s).
void set_baseline_times(SubmissionRun& run, const Calibration& first, const DriftPoint& before,
                        const DriftPoint* after) {
    for (size_t t = 0; t < run.evals.size(); t++) {
        for (size_t r = 0; r < run.evals[t].reps.size(); r++) {
            const double factor =
                after ? interpolated_factor(before, *after, run.at[t][r]) : before.factor;
            run.evals[t].reps[r].baseline_seconds = first[t][r].seconds * factor;
        }
    }
}

std::string drift_note(const DriftPoint& before, const DriftPoint* after) {
    if (after == nullptr)
        return "scored in a batch: the baseline times are those of the batch's first "
               "calibration (docs/batch.md)";
    return "scored in a batch: each baseline time is the batch's first calibration of its task "
           "and seed, scaled by the drift interpolated between the timings before (" +
           fmt::format("{:+.1f}%", 100 * (before.factor - 1)) + ") and after (" +
           fmt::format("{:+.1f}%", 100 * (after->factor - 1)) + ") this submission (docs/batch.md)";
}

// The submission's final report: written, recorded in the history and marked scored in the
// batch, in one transaction.
Status finish_submission(BatchSession& s, SubmissionRun& run, const DriftPoint& before,
                         const DriftPoint* after) {
    const ScoreOptions so = report_options(s, run.entry);
    ScoreReport report = start_report(so, s.trusted, s.scored, s.ctx);
    report.submission_kind = run.prepared.kind;
    report.build = run.prepared.build;
    for (const std::string& w : run.prepared.warnings) report.warnings.push_back(w);
    report.complete = true;
    if (!run.prepared.rejected.empty()) {
        for (const std::string& reason : run.prepared.rejected) report.rejected.push_back(reason);
    } else {
        set_baseline_times(run, s.first, before, after);
        report.warnings.push_back(drift_note(before, after));
        report.fma_ceiling = s.peaks.fma_ceiling;
        report.peak_gflops = s.peaks.sgemm_gflops;
        for (size_t t = 0; t < run.evals.size(); t++) {
            TaskReport task = task_report_of(run.evals[t]);
            task.suite = s.scored.task_suites[t];
            report.tasks.push_back(std::move(task));
        }
    }
    if (Status written = write_reports(so, report); !written) return written;
    Result<HistoryRun> row = history_run_of(report, s.commit);
    if (!row) return failure(row.error());
    const std::string json =
        report_to_json(report).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    Result<int64_t> id =
        record_batch_result(s.db, s.batch.id, run.entry.position, *row, json, so.html_path);
    if (!id) return failure(id.error());
    run.entry.run_id = *id;
    const std::string mean = report.verdict == Verdict::valid
                                 ? fmt::format(" ({:.2f}x mean)", report.summary.arithmetic)
                                 : "";
    spdlog::info("batch: {}: {}{} -> {}", terminal_safe_line(run.entry.submission),
                 to_string(report.verdict), mean, terminal_safe_line(so.html_path));
    return {};
}

}  // namespace

bool batch_block_complete(const BatchOptions& o, size_t submissions, double run_seconds) {
    return (o.retime_every > 0 && submissions >= (size_t)o.retime_every) ||
           (o.retime_minutes > 0 && run_seconds >= 60 * o.retime_minutes);
}

namespace {

Status write_leaderboard(BatchSession& s, BatchOutcome& outcome) {
    return write_batch_leaderboard(s.db, s.batch.out_dir, outcome);
}

// Sets up what the batch's runs share: the suite, sandbox, cores, seeds, task data.
Status start_session(BatchSession& s, const std::string& workdir, SandboxMode sandbox) {
    Result<SuiteToScore> scored = load_suite_to_score(s.trusted, s.options.score, workdir);
    if (!scored) return failure(scored.error());
    s.scored = std::move(*scored);
    Result<std::vector<int>> cpus = choose_cores(s.options.score.threads);
    if (!cpus) return failure(cpus.error());
    s.ctx = make_context(s.options.score, s.trusted, sandbox, workdir, *cpus);
    Result<TrainerBuild> baseline = baseline_trainer(s.trusted);
    if (!baseline) return failure(baseline.error());
    s.baseline = *baseline;
    for (size_t t = 0; t < s.scored.suite.tasks.size(); t++)
        s.seeds.push_back(repetition_seeds(s.batch.seed + s.scored.seed_offsets[t], s.batch.reps));
    // a resumed batch goes on with the seeds in turn
    Result<std::vector<std::vector<CalibrationSample>>> stored =
        read_calibrations(s.db, s.batch.id);
    if (!stored) return failure(stored.error());
    s.retimings = (int)stored->size();
    return {};
}

Status prepare_task_data(BatchSession& s) {
    for (const TaskSpec& task : s.scored.suite.tasks) {
        Result<TaskData> data = prepare_task_inputs(s.ctx, task);
        if (!data) return failure("task " + task.name + ": " + data.error());
        s.data.push_back(std::move(*data));
    }
    return {};
}

// Scores the batch's pending submissions in blocks, each closed by a re-timing of the baseline
// (none when both limits are 0: each report is finished after its runs).
Status score_pending(BatchSession& s, std::vector<SubmissionRun>& runs, BatchOutcome& outcome) {
    if (Status prepared = prepare_task_data(s); !prepared) return prepared;
    s.peaks = measure_machine(s.ctx.threads, true);
    if (Status calibrated = calibrate_baseline(s); !calibrated) return calibrated;
    const bool retime = s.options.retime_every > 0 || s.options.retime_minutes > 0;
    DriftPoint before = first_drift_point(s.first);
    size_t start = 0;
    while (start < runs.size()) {
        size_t end = start;
        double run_seconds = 0;
        while (end < runs.size()) {
            const double started = unix_now();
            if (Status ran = run_submission_tasks(s, runs[end]); !ran) return ran;
            run_seconds += unix_now() - started;
            end++;
            if (!retime) {
                if (Status done = finish_submission(s, runs[end - 1], before, nullptr); !done)
                    return done;
                outcome.scored++;
            } else if (batch_block_complete(s.options, end - start, run_seconds)) {
                break;
            }
        }
        if (retime) {
            Result<DriftPoint> after = retime_baseline(s, before);
            if (!after) return failure(after.error());
            spdlog::info("batch: the baseline is {:+.1f}% against the first calibration",
                         100 * (after->factor - 1));
            for (size_t i = start; i < end; i++) {
                if (Status done = finish_submission(s, runs[i], before, &*after); !done)
                    return done;
                outcome.scored++;
            }
            before = *after;
        }
        if (Status written = write_leaderboard(s, outcome); !written) return written;
        start = end;
    }
    return {};
}

Result<BatchOutcome> batch_unguarded(const BatchOptions& o) {
    Result<TrustedInputs> trusted = load_trusted_inputs();
    if (!trusted) return failure(trusted.error());
    if (o.submissions.empty()) return failure("batch: no submissions to score");
    if (o.score.reps < 1 || o.score.reps > 100) return failure("--reps must be between 1 and 100");
    if (o.retime_every < 0) return failure("--retime-every must be 0 or more");
    if (!(o.retime_minutes >= 0) || !std::isfinite(o.retime_minutes))
        return failure("--retime-minutes must be a finite number, 0 or more");
    // a timeout that is not a positive number would mean that a hanging trainer is never killed
    if (!(o.score.timeout_seconds >= 1) || !std::isfinite(o.score.timeout_seconds))
        return failure("--timeout must be a finite number of seconds, at least 1");
    if (!(o.kill_factor >= 2)) return failure("--kill-factor must be at least 2");
    if (is_generated_suite_name(o.score.suite)) {
        if (Result<GeneratedSuiteName> name = parse_generated_suite_name(o.score.suite); !name)
            return failure(name.error());
    }
    Result<std::string> key = prepare_batch_out_dir(o.out_dir);
    if (!key) return failure(key.error());
    Result<int> lock = lock_batch_out_dir(*key);
    if (!lock) return failure(lock.error());
    UniqueFd lock_fd(*lock);
    BatchOutcome outcome;
    outcome.db = batch_db_path(o, *key);
    outcome.total = (int)o.submissions.size();
    Result<HistoryDb> db = open_history(outcome.db, HistoryOpen::create_if_absent);
    if (!db) return failure(db.error());
    // the database holds the batch's seed: private to the harness's user wherever --db puts it
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const std::string file = outcome.db + suffix;
        if (chmod(file.c_str(), 0600) != 0 && errno != ENOENT)
            return failure("batch: cannot make " + file + " private: " + strerror(errno));
    }
    Result<BatchRecord> batch = open_batch(*db, o, *key);
    if (!batch) return failure(batch.error());

    Result<SandboxMode> sandbox = choose_sandbox(o.score);
    if (!sandbox) return failure(sandbox.error());
    if (*sandbox == SandboxMode::none && !o.score.disable_sandbox)
        return failure(
            "batch: bubblewrap is not usable here. A batch's submissions share their seeds, and "
            "without the sandbox one trainer could leave its outputs in /tmp for another "
            "(docs/batch.md); --no-sandbox forces it, for testing");
    if (*sandbox == SandboxMode::none) spdlog::warn("{}", kUnsandboxedWarning);
    Result<std::string> workdir = make_workdir(o.score);
    if (!workdir) return failure(workdir.error());
    WorkdirGuard guard{*workdir, o.score.keep_workdir};
    BatchSession s{
        o,  *trusted, {}, {}, {}, {}, std::move(*db), std::move(*batch), run_commit(o.commit),
        {}, {},       {}, {}, 0};
    if (Status started = start_session(s, *workdir, *sandbox); !started)
        return failure(started.error());

    // every pending submission is built before any baseline runs
    std::vector<SubmissionRun> runs;
    for (const BatchEntry& entry : s.batch.entries) {
        if (entry.run_id != 0) {
            outcome.scored++;
            continue;
        }
        Result<SubmissionRun> run = prepare(s, entry);
        if (!run) return failure(run.error());
        if (run->prepared.rejected.empty()) {
            runs.push_back(std::move(*run));
            continue;
        }
        for (const std::string& reason : run->prepared.rejected)
            spdlog::error("{}: rejected: {}", terminal_safe_line(entry.submission),
                          terminal_safe(reason));
        if (Status done = finish_submission(s, *run, DriftPoint{}, nullptr); !done)
            return failure(done.error());
        outcome.scored++;
    }
    if (!runs.empty()) {
        if (Status scored = score_pending(s, runs, outcome); !scored)
            return failure(scored.error() + " (" + std::to_string(outcome.scored) + " of " +
                           std::to_string(outcome.total) +
                           " submissions scored; the same command resumes the batch)");
    }
    if (Status finished = finish_batch(s.db, s.batch.id); !finished)
        return failure(finished.error());
    if (Status written = write_leaderboard(s, outcome); !written) return failure(written.error());
    Result<Leaderboard> board = read_leaderboard(s.db, s.batch.out_dir);
    if (!board) return failure(board.error());
    for (const LeaderboardEntry& e : board->entries) outcome.valid += e.run.verdict == "VALID";
    return outcome;
}

// Keeps the bytes of a file name that are safe in any file system and shell.
std::string portable_name(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (out.size() >= kMaxNameChars) break;
        out += std::isalnum(c) || c == '.' || c == '_' || c == '-' ? (char)c : '_';
    }
    if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
    return out;
}

}  // namespace

std::string batch_db_path(const BatchOptions& options, const std::string& key) {
    return options.db.empty() ? key + "/batch.db" : options.db;
}

Status write_batch_leaderboard(HistoryDb& db, const std::string& key, BatchOutcome& outcome) {
    outcome.markdown = key + "/leaderboard.md";
    outcome.html = key + "/leaderboard.html";
    return write_leaderboard_files(db, key, LeaderboardSort::speedup, outcome.markdown,
                                   outcome.html);
}

std::string batch_report_name(int position, const std::string& submission) {
    std::string last = fs::path(submission).lexically_normal().filename().string();
    if (last.empty()) last = fs::path(submission).lexically_normal().parent_path().filename();
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "%03d-", position);
    return prefix + portable_name(last);
}

Result<std::vector<std::string>> submissions_in_directory(const std::string& dir) {
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return failure("batch: " + dir + " is not a directory");
    std::vector<std::string> out;
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!name.empty() && name[0] != '.') out.push_back(entry.path().string());
    }
    if (ec) return failure("batch: cannot list " + dir + ": " + ec.message());
    std::sort(out.begin(), out.end());
    if (out.empty()) return failure("batch: " + dir + " holds no submissions");
    return out;
}

Result<std::vector<std::string>> submissions_in_list(const std::string& list_file) {
    // a list file is the operator's, but read like any file: no link, bounded
    const fs::path path(list_file);
    const std::string parent = path.parent_path().empty() ? "." : path.parent_path().string();
    Result<std::string> text =
        read_file_beneath(parent, path.filename().string(), {kMaxListBytes, 10});
    if (!text) return failure("batch: " + text.error());
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < text->size()) {
        size_t end = text->find('\n', pos);
        if (end == std::string::npos) end = text->size();
        std::string line = text->substr(pos, end - pos);
        pos = end + 1;
        while (!line.empty() && std::isspace((unsigned char)line.back())) line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        out.push_back(fs::path(line).is_absolute() ? line : (fs::path(parent) / line).string());
    }
    if (out.empty()) return failure("batch: " + list_file + " lists no submissions");
    return out;
}

Result<BatchOutcome> run_batch(const BatchOptions& options) {
    try {
        return batch_unguarded(options);
    } catch (const std::exception& e) {
        return failure(std::string("internal error: ") + e.what());
    }
}

}  // namespace trainopt
