// `trainopt profile`: where a submission's time goes on one task, next to the baseline's. The
// baseline and the submission run once each with the same seed, sandboxed and verified as in a
// score's repetition; the table gives per kernel the milliseconds per step each trainer reports
// about itself (meta.json's kernel_seconds: advisory, never a score) and the whole step as the
// harness timed it. Then, when perf can sample here, the submission runs once more under
// `perf record -e cpu-clock` inside its sandbox, and `perf report`, sandboxed too, gives its top
// functions. No score, not official: for the developer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/score.h"

namespace trainopt {

struct ProfileOptions {
    ScoreOptions run;        // the submission, the suite, seed, threads, sandbox and build cache
    std::string task;        // the task of the suite to profile
    bool sample = true;      // also sample the submission with perf (when perf works here)
    int top_functions = 15;  // rows of the sampled table
};

// One kernel's time per training step; negative: that trainer reported no time for it.
struct KernelTimeRow {
    std::string kernel;  // a name from a trainer's meta.json, terminal-safe
    double baseline_ms_per_step = -1;
    double submission_ms_per_step = -1;
};

// One function of the submission's sampled run: its share of the samples.
struct SampledFunction {
    double percent = 0;
    std::string function;  // as perf report names it, terminal-safe
    std::string object;    // the binary or library it is in
};

struct ProfileReport {
    std::string submission;
    std::string submission_kind;
    std::string suite;
    std::string task;
    std::string sandbox;
    int threads = 0;
    int steps = 0;
    uint64_t seed = 0;                  // the seed both runs used
    std::vector<std::string> rejected;  // the submission was refused: nothing ran
    std::vector<std::string> warnings;
    // the runs as the harness timed them (wall seconds, spawn to reap)
    double baseline_seconds = 0;
    double submission_seconds = 0;
    std::vector<std::string> invalid;    // why the submission's run failed verification
    std::vector<KernelTimeRow> kernels;  // the baseline's slowest first
    // sampling: what perf found, or why it did not sample
    bool sampled = false;
    std::string sampling_note;
    std::vector<SampledFunction> functions;  // the most samples first
};

// Runs the profile. Fails when the harness cannot (no such task, the baseline failed, an
// interrupt); a refused or invalid submission is a report that says so.
Result<ProfileReport> run_profile(const ProfileOptions& options);

// The report for a terminal: every string from a trainer or perf is terminal-safe.
std::string profile_to_text(const ProfileReport& report);

// Exit code: 0 when the submission ran and verified, 3 when it was refused or is invalid.
int profile_exit_code(const ProfileReport& report);

// Whether perf can sample a sandboxed run on this machine, and if not, why ("perf is not
// installed ...", "kernel.perf_event_paranoid is 3 ..."). Empty: it should.
std::string perf_unavailable_reason();

// The rows of `perf report --stdio -q -F overhead,dso,sym -t '|'` (untrusted text), the most
// samples first, at most `top`.
std::vector<SampledFunction> parse_perf_report(const std::string& text, int top);

}  // namespace trainopt
