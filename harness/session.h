// Where a score's runs happen, shared by `score` and `ci`: the sandbox, the private work
// directory, the cores, the pristine baseline trainer, a submission's trainer (intake, sandboxed
// build, binary audit) and the machine's measured bounds.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/evaluation.h"
#include "harness/sandbox.h"
#include "harness/score.h"
#include "harness/trusted_inputs.h"
#include "scoring/machine_peak.h"

namespace trainopt {

// The sandbox runs use: bubblewrap when it works here, else the flagged fallback (refused with
// --require-sandbox).
Result<SandboxMode> choose_sandbox(const ScoreOptions& options);

constexpr const char* kUnsandboxedWarning =
    "UNSANDBOXED: bubblewrap is not usable on this machine; trainers ran with uid separation only "
    "(see docs/security.md). Do not trust this score for adversarial submissions.";

// A fresh private work directory: under /tmp, or under --workdir when given.
Result<std::string> make_workdir(const ScoreOptions& options);

// Unmounts and deletes the scratch tree prepare_submission built in (workdir/scratch); the
// trainer it left in workdir/private stays.
void release_scratch(const std::string& workdir);

// Removes the private work directory when the score is done (unless asked to keep it).
struct WorkdirGuard {
    std::string path;
    bool keep;
    ~WorkdirGuard();
};

// The cores runs are pinned to: the first `threads` this process may use (0: all of them).
Result<std::vector<int>> choose_cores(int threads);

HarnessContext make_context(const ScoreOptions& options, const TrustedInputs& trusted,
                            SandboxMode sandbox, const std::string& workdir,
                            const std::vector<int>& cpus);

// The baseline cache when options.reuse_baseline_outputs asks for it, it is enabled and it can be
// trusted here; otherwise none, with a warning saying why. Not used when a submission's code
// would run as this user outside bubblewrap (no sandbox and not root): it could write the cache.
std::optional<CacheDir> open_baseline_cache_for(const ScoreOptions& options, SandboxMode sandbox);

// The pristine baseline trainer, which every repetition runs first.
Result<TrainerBuild> baseline_trainer(const TrustedInputs& trusted);

// The submission's trainer, or why the submission is refused.
struct PreparedSubmission {
    std::string kind;  // patch, overlay, workspace or baseline
    TrainerBuild trainer;
    BuildInfo build;  // built now or reused from the build cache
    std::vector<std::string>
        warnings;  // a check that could not run: the disk cap, the binary audit
    std::vector<std::string> rejected;  // non-empty: refused by intake, build or audit; no runs
};

// Intake, sandboxed build and binary audit of options.submission, in ctx.workdir's scratch and
// private directories. "baseline" is the pristine trainer itself. Fails when the harness cannot
// go on (an unknown submission path, the work directory, an interrupt).
Result<PreparedSubmission> prepare_submission(const ScoreOptions& options,
                                              const HarnessContext& ctx,
                                              const TrainerBuild& baseline);

struct MachinePeaks {
    FmaCeiling fma_ceiling;   // the speed-of-light backstop's bound (scoring/report.h)
    double sgemm_gflops = 0;  // the speed-of-light column; 0 when not measured
};

// The FMA ceiling is always measured (well under a second), so verify applies the backstop
// too; the sgemm peak only when asked.
MachinePeaks measure_machine(int threads, bool measure_sgemm);

}  // namespace trainopt
