#include "harness/slurm_batch.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "harness/history_command.h"
#include "harness/process.h"
#include "harness/safe_file.h"
#include "harness/trusted_inputs.h"
#include "scoring/atomic_file.h"
#include "scoring/batch_db.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

extern char** environ;

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr const char* kShardsDir = "shards";
constexpr const char* kSlurmDir = "slurm";

std::string shard_dir(const std::string& key, int position) {
    return key + "/" + kShardsDir + "/" + std::to_string(position);
}

// A shard is a batch of one submission: its report's stem there.
std::string shard_report_stem(const std::string& key, const BatchEntry& entry) {
    return shard_dir(key, entry.position) + "/" + batch_report_name(0, entry.submission);
}

std::string joined_words(const std::vector<std::string>& words) {
    std::string line;
    for (const std::string& w : words) line += (line.empty() ? "" : " ") + shell_word(w);
    return line;
}

// #SBATCH lines are not parsed by a shell: the paths in them must need no quoting.
Status check_directive_safe(const std::string& text, const std::string& what) {
    if (shell_word(text) != text)
        return failure("batch --slurm: " + what + " " + terminal_safe_line(text) +
                       " holds characters an #SBATCH line cannot carry; use a plain path");
    return {};
}

std::string array_script(const BatchOptions& o, const BatchRecord& batch,
                         const std::vector<int>& positions, const SlurmOptions& slurm) {
    std::string ids;
    for (int p : positions) ids += (ids.empty() ? "" : ",") + std::to_string(p);
    const std::string slurm_dir = batch.out_dir + "/" + kSlurmDir;
    std::string s =
        "#!/bin/bash\n"
        "# Written by `trainopt batch --slurm` (docs/batch.md): array task N scores submission N\n"
        "# of the batch in " +
        batch.out_dir +
        " on a node of its own, which calibrates its own baseline.\n"
        "#SBATCH --job-name=trainopt-batch\n"
        "#SBATCH --array=" +
        ids +
        "\n"
        "#SBATCH --exclusive\n"
        "#SBATCH --nodes=1\n"
        "#SBATCH --ntasks=1\n"
        "#SBATCH --output=" +
        slurm_dir + "/shard-%a.log\n";
    for (const std::string& line : slurm.sbatch_lines) s += "#SBATCH " + line + "\n";
    s += "set -euo pipefail\n"
         "# the shard's database stays on the node's own disk (SQLite's WAL needs one host)\n"
         "DB=\"${TMPDIR:-/tmp}/trainopt-batch-${SLURM_ARRAY_JOB_ID}-${SLURM_ARRAY_TASK_ID}.db\"\n"
         "trap 'rm -f \"$DB\" \"$DB-wal\" \"$DB-shm\"' EXIT\n"
         "case \"$SLURM_ARRAY_TASK_ID\" in\n";
    for (int p : positions) {
        s += "  " + std::to_string(p) + ") " + slurm.trainopt + " " +
             joined_words(shard_arguments(o, batch, p)) + " --db \"$DB\" ;;\n";
    }
    s += "  *) echo \"no submission for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\n"
         "esac\n";
    return s;
}

std::string merge_script(const BatchOptions& o, const BatchRecord& batch, const SlurmOptions& slurm,
                         const std::string& db) {
    std::string s =
        "#!/bin/bash\n"
        "# Written by `trainopt batch --slurm`: records the shards' reports in the batch's\n"
        "# database and writes its leaderboard, after the array job.\n"
        "#SBATCH --job-name=trainopt-merge\n"
        "#SBATCH --nodes=1\n"
        "#SBATCH --ntasks=1\n"
        "#SBATCH --output=" +
        batch.out_dir + "/" + kSlurmDir + "/merge.log\n";
    for (const std::string& line : slurm.sbatch_lines) s += "#SBATCH " + line + "\n";
    std::vector<std::string> args = {"batch", "--merge-shards", "--out", batch.out_dir, "--db", db};
    if (!o.commit.empty()) args.insert(args.end(), {"--commit", o.commit});
    s += "set -euo pipefail\n" + slurm.trainopt + " " + joined_words(args) + "\n";
    return s;
}

// Runs `sbatch --parsable ARGS...` with this process's environment; returns the job id.
Result<std::string> sbatch(const std::vector<std::string>& args, const std::string& log) {
    SpawnSpec spec;
    spec.argv = {"/usr/bin/env", "sbatch", "--parsable"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    for (char** e = environ; *e != nullptr; e++) spec.env.push_back(*e);
    spec.output_path = log;
    spec.timeout_seconds = 120;
    Result<ProcessOutcome> outcome = run_process(spec);
    const std::string out = file_tail(log, 400);
    if (!outcome || !outcome->succeeded())
        return failure("sbatch " + describe(outcome) + (out.empty() ? "" : ": " + out));
    std::string id = out.substr(0, out.find_first_of(";\n"));
    if (id.empty() || !std::all_of(id.begin(), id.end(), ::isdigit))
        return failure("sbatch printed no job id: " + out);
    return id;
}

Status write_script(const std::string& path, const std::string& text) {
    if (Status written = write_file_atomic(path, text); !written) return written;
    // the array script carries the batch's seed: the harness's user only
    if (chmod(path.c_str(), 0700) != 0)
        return failure("cannot make " + path + " executable: " + strerror(errno));
    return {};
}

}  // namespace

std::vector<std::string> shard_arguments(const BatchOptions& o, const BatchRecord& batch,
                                         int position) {
    const ScoreOptions& so = o.score;
    std::vector<std::string> args = {"batch",
                                     batch.entries[(size_t)position].submission,
                                     "--out",
                                     shard_dir(batch.out_dir, position),
                                     "--suite",
                                     batch.suite,
                                     "--reps",
                                     std::to_string(batch.reps),
                                     "--seed",
                                     std::to_string(batch.seed),
                                     "--retime-every",
                                     "0",
                                     "--retime-minutes",
                                     "0",
                                     "--kill-factor",
                                     format_fixed(o.kill_factor, 2),
                                     "--timeout",
                                     format_fixed(so.timeout_seconds, 0),
                                     "--max-memory-mb",
                                     std::to_string(so.max_memory_mb)};
    if (so.threads > 0) args.insert(args.end(), {"--threads", std::to_string(so.threads)});
    if (!so.generator_ranges.empty())
        args.insert(args.end(), {"--generator", fs::absolute(so.generator_ranges).string()});
    if (so.require_sandbox) args.push_back("--require-sandbox");
    if (so.disable_sandbox) args.push_back("--no-sandbox");
    if (!so.build_cache.enabled) args.push_back("--no-build-cache");
    if (so.build_cache.enabled && !so.build_cache.dir.empty())
        args.insert(args.end(), {"--build-cache", so.build_cache.dir});
    if (!so.workdir.empty()) args.insert(args.end(), {"--workdir", so.workdir});
    if (!o.commit.empty()) args.insert(args.end(), {"--commit", o.commit});
    return args;
}

Result<SlurmPlan> submit_slurm_batch(const BatchOptions& o, const SlurmOptions& slurm_in) {
    if (o.submissions.empty()) return failure("batch: no submissions to score");
    SlurmOptions slurm = slurm_in;
    if (slurm.trainopt.empty()) slurm.trainopt = own_command();
    Result<std::string> key = prepare_batch_out_dir(o.out_dir);
    if (!key) return failure(key.error());
    if (Status safe = check_directive_safe(*key, "the output directory"); !safe)
        return failure(safe.error());
    Result<int> lock = lock_batch_out_dir(*key);
    if (!lock) return failure(lock.error());
    UniqueFd lock_fd(*lock);
    const std::string db_path = fs::absolute(batch_db_path(o, *key)).string();
    Result<HistoryDb> db = open_history(db_path, HistoryOpen::create_if_absent);
    if (!db) return failure(db.error());
    Result<BatchRecord> batch = open_batch(*db, o, *key);
    if (!batch) return failure(batch.error());
    SlurmPlan plan;
    for (const BatchEntry& e : batch->entries) {
        if (e.run_id == 0) plan.positions.push_back(e.position);
    }
    if (plan.positions.empty()) return plan;
    const std::string slurm_dir = *key + "/" + kSlurmDir;
    std::error_code ec;
    fs::create_directories(slurm_dir, ec);
    if (ec) return failure("cannot create " + slurm_dir + ": " + ec.message());
    plan.array_script = slurm_dir + "/array.sbatch";
    plan.merge_script = slurm_dir + "/merge.sbatch";
    if (Status w = write_script(plan.array_script, array_script(o, *batch, plan.positions, slurm));
        !w)
        return failure(w.error());
    if (Status w = write_script(plan.merge_script, merge_script(o, *batch, slurm, db_path)); !w)
        return failure(w.error());
    if (!slurm.submit) return plan;
    Result<std::string> array = sbatch({plan.array_script}, slurm_dir + "/sbatch-array.out");
    if (!array) return failure(array.error());
    plan.array_job = *array;
    Result<std::string> merge =
        sbatch({"--dependency=afterany:" + plan.array_job, plan.merge_script},
               slurm_dir + "/sbatch-merge.out");
    if (!merge) return failure(merge.error());
    plan.merge_job = *merge;
    return plan;
}

Result<BatchOutcome> merge_slurm_shards(const BatchOptions& o) {
    if (o.out_dir.empty()) return failure("batch --merge-shards: give the batch's --out");
    const std::string key = fs::absolute(o.out_dir).lexically_normal().string();
    Result<int> lock = lock_batch_out_dir(key);
    if (!lock) return failure(lock.error());
    UniqueFd lock_fd(*lock);
    BatchOutcome outcome;
    outcome.db = batch_db_path(o, key);
    Result<HistoryDb> db = open_history(outcome.db, HistoryOpen::existing_only);
    if (!db) return failure(db.error());
    Result<std::optional<BatchRecord>> found = find_batch(*db, key);
    if (!found) return failure(found.error());
    if (!*found) return failure("history " + outcome.db + " holds no batch writing to " + key);
    const BatchRecord& batch = **found;
    outcome.total = (int)batch.entries.size();
    const std::string commit = run_commit(o.commit);
    for (const BatchEntry& e : batch.entries) {
        if (e.run_id != 0) {
            outcome.scored++;
            continue;
        }
        const std::string stem = shard_report_stem(key, e);
        if (!fs::exists(stem + ".json")) {
            spdlog::warn("batch: submission {} ({}) has no report yet", e.position,
                         terminal_safe_line(e.submission));
            continue;
        }
        Result<ScoreReport> report = load_report(stem + ".json");
        if (!report) return failure(report.error());
        // the shard must be this batch's: its submission, suite and seed
        if (report->submission != terminal_safe_line(e.submission) ||
            report->suite != batch.suite || report->seed != batch.seed || !report->complete)
            return failure(stem + ".json is not the final report of submission " +
                           std::to_string(e.position) + " of this batch");
        Result<HistoryRun> run = history_run_of(*report, commit);
        if (!run) return failure(run.error());
        const std::string json =
            report_to_json(*report).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        Result<int64_t> id =
            record_batch_result(*db, batch.id, e.position, *run, json, stem + ".html");
        if (!id) return failure(id.error());
        outcome.scored++;
    }
    if (outcome.scored == outcome.total) {
        if (Status finished = finish_batch(*db, batch.id); !finished)
            return failure(finished.error());
    }
    if (Status written = write_batch_leaderboard(*db, key, outcome); !written)
        return failure(written.error());
    Result<Leaderboard> board = read_leaderboard(*db, key);
    if (!board) return failure(board.error());
    for (const LeaderboardEntry& e : board->entries) outcome.valid += e.run.verdict == "VALID";
    return outcome;
}

}  // namespace trainopt
