#include "harness/session.h"

#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "harness/binary_audit.h"
#include "harness/build.h"
#include "harness/build_cache.h"
#include "harness/incremental.h"
#include "harness/intake.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace fs = std::filesystem;

// The sandbox runs use: bubblewrap when it works here, else the flagged fallback (refused with
// --require-sandbox).
Result<SandboxMode> choose_sandbox(const ScoreOptions& options) {
    const SandboxMode mode = options.disable_sandbox ? SandboxMode::none : detect_sandbox_mode();
    if (mode == SandboxMode::none && options.require_sandbox)
        return failure("bubblewrap is not usable here and --require-sandbox was given");
    return mode;
}

// Fails unless every directory above `dir` lets other users through.
static Status check_reachable_by_others(const std::string& dir) {
    for (fs::path p = fs::path(dir).parent_path(); !p.empty(); p = p.parent_path()) {
        struct stat st;
        if (stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) {
            return failure(
                "builds (and runs without the sandbox) run as uid nobody and must reach the "
                "work directory, but " +
                p.string() + " does not let other users through: choose another --workdir");
        }
        if (p == p.root_path()) break;
    }
    return {};
}

// A fresh private work directory: under /tmp, or under --workdir when given.
Result<std::string> make_workdir(const ScoreOptions& options) {
    const std::string parent = options.workdir.empty() ? "/tmp" : options.workdir;
    std::error_code ec;
    if (!options.workdir.empty()) fs::create_directories(parent, ec);
    std::string workdir = parent + "/trainopt-XXXXXX";
    if (mkdtemp(workdir.data()) == nullptr)
        return failure("cannot create a work directory under " + parent + ": " + strerror(errno));
    // Traversable, not listable: the untrusted user (nobody) reaches the scratch tree it builds
    // in, and without the sandbox its own run directories, by name; so must every directory above.
    chmod(workdir.c_str(), 0711);
    if (untrusted_uid() >= 0) {
        if (Status reachable = check_reachable_by_others(workdir); !reachable) {
            std::error_code ignored;
            fs::remove_all(workdir, ignored);
            return failure(reachable.error());
        }
    }
    return workdir;
}

void release_scratch(const std::string& workdir) {
    // the scratch tree's tmpfs (cap_directory_size) first, or its mount point stays busy
    umount2((workdir + "/scratch").c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(workdir + "/scratch", ec);
}

WorkdirGuard::~WorkdirGuard() {
    if (!keep && !path.empty()) {
        release_scratch(path);
        std::error_code ec;
        fs::remove_all(path, ec);
    }
}

// The cores runs are pinned to: the first `threads` this process may use (0: all of them).
Result<std::vector<int>> choose_cores(int threads) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
        return failure("cannot read this process's CPU affinity");
    if (threads <= 0) threads = CPU_COUNT(&allowed);
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE && (int)cpus.size() < threads; cpu++) {
        if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
    }
    if ((int)cpus.size() < threads) {
        return failure("--threads " + std::to_string(threads) + " asks for more cores than the " +
                       std::to_string(cpus.size()) + " this process may use");
    }
    return cpus;
}

std::optional<CacheDir> open_baseline_cache_for(const ScoreOptions& options, SandboxMode sandbox) {
    if (!options.reuse_baseline_outputs || !options.baseline_cache.enabled) return std::nullopt;
    auto without_cache = [](const std::string& why) -> std::optional<CacheDir> {
        spdlog::warn("baseline cache not used: {}", why);
        return std::nullopt;
    };
    if (sandbox == SandboxMode::none && untrusted_uid() < 0) {
        return without_cache(
            "without bubblewrap and not root, the submission's code runs as this user and could "
            "write the cache");
    }
    Result<std::string> dir = options.baseline_cache.dir.empty() ? default_baseline_cache_dir()
                                                                 : options.baseline_cache.dir;
    if (!dir) return without_cache(dir.error());
    Result<CacheDir> cache = open_baseline_cache(*dir);
    if (!cache) return without_cache(cache.error());
    return std::move(*cache);
}

// The pristine baseline trainer, which every repetition runs first.
Result<TrainerBuild> baseline_trainer(const TrustedInputs& trusted) {
    if (!fs::exists(trusted.baseline_trainer)) {
        return failure("the pristine baseline trainer " + trusted.baseline_trainer +
                       " is missing: build the project first");
    }
    return TrainerBuild{trusted.baseline_trainer};
}

// Everything a submission's build writes (its scratch tree: sources and build tree) fits in this;
// the expert's takes about 60 MB.
constexpr size_t kScratchMaxBytes = (size_t)4 << 30;

// Intake, sandboxed build and binary audit of the submission, in the work directory's scratch
// and private directories. "baseline" is the pristine trainer itself. Fails when the harness
// cannot go on (an unknown submission path, the work directory, an interrupt).
Result<PreparedSubmission> prepare_submission(const ScoreOptions& options,
                                              const HarnessContext& ctx,
                                              const TrainerBuild& baseline) {
    PreparedSubmission prepared;
    if (options.submission == "baseline") {
        prepared.kind = "baseline";
        prepared.trainer = baseline;
        return prepared;
    }
    Result<Submission> submission = classify_submission(options.submission);
    if (!submission) return failure(submission.error());
    prepared.kind = to_string(submission->kind);
    const std::string scratch = ctx.workdir + "/scratch";
    const std::string private_dir = ctx.workdir + "/private";
    if (mkdir(scratch.c_str(), 0711) != 0 || mkdir(private_dir.c_str(), 0711) != 0 ||
        chmod(scratch.c_str(), 0711) != 0 || chmod(private_dir.c_str(), 0711) != 0)
        return failure("cannot create the scratch directories in " + ctx.workdir);
    if (Status capped = cap_directory_size(scratch, kScratchMaxBytes); !capped) {
        prepared.warnings.push_back("the build's disk use is not capped (" + capped.error() +
                                    "): a build could fill the disk under " + ctx.workdir);
        spdlog::warn("{}", prepared.warnings.back());
    }
    if (Status copied = copy_pristine_tree(ctx.project_root, scratch + "/src"); !copied)
        return failure(copied.error());

    spdlog::info("intake: applying {} {}", prepared.kind, terminal_safe_line(options.submission));
    std::vector<std::string> problems =
        apply_submission(*submission, ctx.project_root, scratch + "/src", ctx.sandbox);
    if (!problems.empty()) {
        for (const std::string& p : problems) prepared.rejected.push_back("intake: " + p);
        return prepared;
    }
    // built in the sandbox, or reused from the build cache; audited either way
    const IncrementalRequest incremental{options.incremental, options.submission};
    Result<ObtainedTrainer> built = build_trainer_with_cache(
        options.build_cache, scratch, private_dir, ctx.sandbox_init, ctx.sandbox, ctx.threads,
        options.incremental_build ? &incremental : nullptr);
    if (interrupted()) return failure("interrupted during the build");
    if (!built) {
        prepared.rejected.push_back("the submission does not build: " + built.error());
        return prepared;
    }
    prepared.build = built->info;
    BinaryAudit audit = audit_trainer_binary(built->trainer.trainer_copy, private_dir, ctx.sandbox);
    for (const std::string& w : audit.warnings) prepared.warnings.push_back(w);
    prepared.rejected = audit.problems;
    prepared.trainer = {built->trainer.trainer_copy};
    return prepared;
}

// The FMA ceiling is always measured (well under a second), so verify applies the backstop
// too; the sgemm peak only when asked.
MachinePeaks measure_machine(int threads, bool measure_sgemm) {
    MachinePeaks peaks;
    peaks.fma_ceiling = measure_fma_ceiling(threads);
    spdlog::info("FMA ceiling: {:.1f} GFLOP/s ({}, {} threads)", peaks.fma_ceiling.gflops,
                 peaks.fma_ceiling.isa, peaks.fma_ceiling.threads);
    if (measure_sgemm) {
        peaks.sgemm_gflops = measure_peak_gflops(threads);
        spdlog::info("machine peak: {:.1f} GFLOP/s (OpenBLAS sgemm, {} threads)",
                     peaks.sgemm_gflops, threads);
    }
    return peaks;
}

HarnessContext make_context(const ScoreOptions& options, const TrustedInputs& trusted,
                            SandboxMode sandbox, const std::string& workdir,
                            const std::vector<int>& cpus) {
    HarnessContext ctx;
    ctx.project_root = trusted.pristine_root;
    ctx.sandbox_init = trusted.sandbox_init;
    ctx.sandbox = sandbox;
    ctx.workdir = workdir;
    ctx.threads = (int)cpus.size();  // --threads, or every core this process may use
    ctx.cpus = cpus;
    ctx.timeout_seconds = options.timeout_seconds;
    ctx.max_memory_bytes = (size_t)options.max_memory_mb << 20;
    return ctx;
}

}  // namespace trainopt
