// Scoring a submission end to end: intake -> build -> binary audit -> per task, interleaved
// sandboxed runs with verification -> report. Each step is its own module; this file only wires
// them together and writes the report after every repetition so nothing is lost on interruption.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/baseline_cache.h"
#include "harness/build_cache.h"
#include "harness/incremental.h"
#include "scoring/report.h"

namespace trainopt {

struct ScoreOptions {
    std::string
        submission;  // patch, overlay dir, workspace dir, or "baseline" (pristine vs itself)
    std::string suite = "default";  // built-in name, generated:SEED[:N], or a directory
    std::string generator_ranges;   // a generated suite's [generator] ranges file; empty: defaults
    // also score a generated suite next to `suite` (docs/scoring.md, "Generalization"): "N"
    // tasks from a seed drawn now, or "generated:SEED[:N]"; empty: none
    std::string with_generated;
    std::vector<std::string> only_tasks;  // score these tasks of the suite only (empty: all)
    int reps = 3;
    std::optional<uint64_t> seed;  // fixed base seed; fresh random one when absent
    std::string json_path;
    std::string markdown_path;
    std::string html_path;
    std::string workdir;  // parent of the private work directory (default /tmp)
    bool keep_workdir = false;
    size_t max_memory_mb = 8192;  // data-segment cap of every trainer process
    int threads = 0;              // 0: all cores of this machine
    double timeout_seconds = 1800;
    bool require_sandbox = false;  // refuse to run without bubblewrap
    bool disable_sandbox = false;  // testing the fallback only: run as if bubblewrap were absent
    bool measure_peak = true;      // the sgemm peak of the speed-of-light column (verify skips it)

    // the command the report is of (kReportCommands): "trainopt verify: VALID"
    std::string command = "score";
    // --build-cache DIR, --no-build-cache: where the submission's trainer may come from
    BuildCacheOptions build_cache;
    // --references: also score the shipped example and expert submissions on the same suite
    // and seeds, for the reports' "where this stands" block; found in references_dir, or in
    // the source checkout trainopt was built from when empty
    bool references = false;
    std::string references_dir;
    // the baseline's reference outputs are taken from the baseline cache (and stored in it):
    // `verify --seed S` and `check`, whose fixed seeds make them worth keeping. Nothing is timed
    // against a reused reference, so `score` and `ci` never set it.
    bool reuse_baseline_outputs = false;
    // --baseline-cache DIR, --no-baseline-cache
    BaselineCacheOptions baseline_cache;
    // a submission's trainer is built incrementally (harness/incremental.h): `check` and
    // `verify`, the agent's loop. The official numbers (`score`, `ci`) never set it: they build
    // from scratch or reuse a clean build from the build cache.
    bool incremental_build = false;
    // --no-incremental, --clear-incremental, --incremental-dir DIR
    IncrementalOptions incremental;
};

// The shipped reference submissions, by role (kReferenceRoles), as folders of a checkout's
// submissions/: example -> blas-tbb, expert -> expert.
constexpr const char* kReferenceFolders[] = {"blas-tbb", "expert"};

// The finished report (VALID, INVALID or REJECTED), its files written. Fails when the harness
// could not produce a score; a failure while the tasks run leaves what was measured so far in
// the report files.
Result<ScoreReport> run_score(const ScoreOptions& options);

// Exit code for a finished score: 0 VALID, 3 INVALID or REJECTED.
int exit_code_for(const ScoreReport& report);

}  // namespace trainopt
