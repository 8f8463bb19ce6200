#include "harness/profile.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "contract/rng.h"
#include "harness/cli_error.h"
#include "harness/evaluation.h"
#include "harness/safe_file.h"
#include "harness/sandbox_protocol.h"
#include "harness/scored_suite.h"
#include "harness/session.h"
#include "harness/trusted_inputs.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPerf = "/usr/bin/perf";
constexpr const char* kParanoidFile = "/proc/sys/kernel/perf_event_paranoid";
constexpr const char* kPerfData = "perf.data";
constexpr const char* kSandboxPerfData = "/sandbox/perf.data";
// perf.data of a long run at 499 samples a second on every core stays far below this; the
// run's file-size limit (256 MiB at least) is above it
constexpr size_t kPerfDataMaxBytes = (size_t)192 << 20;
constexpr int kSampleHz = 499;
constexpr const char* kDeletedSuffix = " (deleted)";  // how the kernel names an unlinked file
constexpr double kPerfReportTimeoutSeconds = 300;
constexpr size_t kPerfReportMaxBytes = (size_t)8 << 20;
constexpr size_t kMaxKernelRows = 64;  // meta.json holds at most 64 kernels per trainer

// The first line of a log tail worth quoting, one line, at most 300 characters.
std::string log_excerpt(const std::string& log_path) {
    std::string tail = file_tail(log_path, 1200);
    std::istringstream lines(tail);
    std::string line, found;
    while (std::getline(lines, line)) {
        if (line.find("perf_event") != std::string::npos ||
            line.find("rror") != std::string::npos) {
            found = line;
            break;
        }
    }
    if (found.empty()) found = tail;
    return clipped_line(found, 300);
}

// perf record in the trainer's place: it runs the trainer and writes perf.data into the output
// directory (the run's working directory). No call graphs, no build-id cache: the sandbox's /tmp
// is small, and perf report resolves symbols from the same paths in its own sandbox.
ProfilerRequest perf_record_request() {
    ProfilerRequest request;
    request.prefix = {kPerf, "record",
                      "-e",  "cpu-clock",
                      "-F",  std::to_string(kSampleHz),
                      "-q",  "--no-buildid-cache",
                      "-o",  kPerfData,
                      "--"};
    request.output = kPerfData;
    request.max_bytes = kPerfDataMaxBytes;
    return request;
}

// `perf report` on a sampled run's perf.data, in the sandbox, with the trainer at the path it
// ran from, so perf names its functions; the listing is written to private_dir/perf-report.txt
// and read back bounded. perf.data and the symbols come from a hostile run: nothing of them is
// parsed outside the sandbox.
Result<std::string> perf_report(const TrainerBuild& submission, const std::string& perf_data,
                                const std::string& private_dir) {
    UniqueFd data(open(perf_data.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    UniqueFd trainer(open(submission.trainer_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (data.fd < 0 || trainer.fd < 0) return failure("cannot open the sampled run's files");
    SandboxSpec sandbox;
    sandbox.mode = SandboxMode::bubblewrap;
    // The sampled run's trainer was a file bubblewrap copied into memory and unlinked, so perf
    // recorded its mapping as "/sandbox/bin/trainopt-train (deleted)": that is where perf
    // report looks for its symbols.
    sandbox.data_files = {{3, kSandboxPerfData, 0444},
                          {4, std::string(kSandboxTrainer) + kDeletedSuffix, 0555}};
    sandbox.command = {kPerf,     "report",           "-f", "-i",     kSandboxPerfData,
                       "--stdio", "--no-children",    "-q", "--sort", "dso,sym",
                       "-F",      "overhead,dso,sym", "-t", "|",      "--percent-limit",
                       "0.2"};
    sandbox.cwd = "/tmp";
    SpawnSpec spec;
    spec.argv = sandbox_argv(sandbox);
    spec.env = sandbox_environment();
    spec.cwd = "/";
    spec.output_path = private_dir + "/perf-report.txt";
    spec.timeout_seconds = kPerfReportTimeoutSeconds;
    spec.run_as_uid = untrusted_uid();
    spec.pass_fds = {data.fd, trainer.fd};
    Result<ProcessOutcome> report = run_process(spec);
    if (!report || !report->succeeded())
        return failure("perf report " + describe(report) + ": " + log_excerpt(spec.output_path));
    return read_file_beneath(private_dir, "perf-report.txt", {kPerfReportMaxBytes, 30});
}

// The submission once more, untimed and unverified, under perf record; its top functions.
Status sample_submission(const HarnessContext& ctx, const TrainerBuild& submission,
                         const TaskSpec& task, const TaskData& data, uint64_t seed, int top,
                         ProfileReport& report) {
    const ProfilerRequest request = perf_record_request();
    Result<TrainerRun> run =
        run_trainer(ctx, submission, task, data, seed, random_nonce(), nullptr, &request);
    if (!run) return failure("the sampled run did not start: " + run.error());
    const std::string perf_data = run->export_dir + "/" + kPerfData;
    Status outcome;
    if (!run->process.succeeded() || !fs::exists(perf_data)) {
        std::string why = run->process.describe();
        for (const std::string& p : run->collect_problems) why += "; " + p;
        outcome = failure("the sampled run " + why + ": " + log_excerpt(run->log_path));
    } else if (Result<std::string> listing = perf_report(submission, perf_data, run->run_dir);
               !listing) {
        outcome = failure(listing.error());
    } else {
        report.functions = parse_perf_report(*listing, top);
        report.sampled = true;
        report.sampling_note = "perf record -e cpu-clock -F " + std::to_string(kSampleHz) +
                               ", one more run of the submission";
    }
    remove_run(*run);
    return outcome;
}

// Per kernel, milliseconds per step of each trainer, the baseline's slowest first, then the
// kernels only the submission reports.
std::vector<KernelTimeRow> kernel_rows(const RepResult& rep, int steps) {
    std::map<std::string, KernelTimeRow> rows;
    const double per_step = steps > 0 ? 1000.0 / steps : 0;
    for (const auto& [name, seconds] : rep.baseline_kernel_seconds) {
        rows[name].kernel = name;
        rows[name].baseline_ms_per_step = seconds * per_step;
    }
    for (const auto& [name, seconds] : rep.submission_kernel_seconds) {
        rows[name].kernel = name;
        rows[name].submission_ms_per_step = seconds * per_step;
    }
    std::vector<KernelTimeRow> out;
    for (auto& [name, row] : rows) out.push_back(row);
    std::stable_sort(out.begin(), out.end(), [](const KernelTimeRow& a, const KernelTimeRow& b) {
        if (a.baseline_ms_per_step != b.baseline_ms_per_step)
            return a.baseline_ms_per_step > b.baseline_ms_per_step;
        return a.submission_ms_per_step > b.submission_ms_per_step;
    });
    if (out.size() > kMaxKernelRows) out.resize(kMaxKernelRows);
    return out;
}

// The seed of a score's first repetition of the task: a profile with --seed runs what `score
// --seed` runs first.
uint64_t first_repetition_seed(uint64_t base_seed, uint64_t offset) {
    Rng seeds(base_seed + offset);
    return seeds.next_u64() >> 16;
}

Result<ProfileReport> profile_unguarded(const ProfileOptions& options) {
    if (options.task.empty()) return failure("profile needs --task: the task to profile");
    if (options.top_functions < 1 || options.top_functions > 200)
        return failure("--top must be between 1 and 200");
    if (is_generated_suite_name(options.run.suite))
        return failure("profile takes a built-in suite or a directory of task files, not " +
                       terminal_safe_line(options.run.suite));
    ScoreOptions run = options.run;
    run.only_tasks = {options.task};
    run.reps = 1;
    run.measure_peak = false;
    run.with_generated.clear();
    Result<TrustedInputs> trusted = load_trusted_inputs();
    if (!trusted) return failure(trusted.error());
    Result<SandboxMode> sandbox = choose_sandbox(run);
    if (!sandbox) return failure(sandbox.error());
    Result<std::string> workdir = make_workdir(run);
    if (!workdir) return failure(workdir.error());
    WorkdirGuard guard{*workdir, run.keep_workdir};
    Result<SuiteToScore> scored = load_suite_to_score(*trusted, run, *workdir);
    if (!scored) return failure(scored.error());
    Result<std::vector<int>> cpus = choose_cores(run.threads);
    if (!cpus) return failure(cpus.error());
    const HarnessContext ctx = make_context(run, *trusted, *sandbox, *workdir, *cpus);
    const TaskSpec& task = scored->suite.tasks.front();

    ProfileReport report;
    report.submission = terminal_safe_line(run.submission);
    report.suite = terminal_safe_line(run.suite);
    report.task = task.name;
    report.sandbox = to_string(*sandbox);
    report.threads = ctx.threads;
    report.steps = task.train.steps;
    report.warnings = trusted->warnings;
    if (*sandbox == SandboxMode::none) report.warnings.push_back(kUnsandboxedWarning);
    const uint64_t base_seed = run.seed ? *run.seed : random_seed();
    report.seed = first_repetition_seed(base_seed, scored->seed_offsets.front());

    Result<TrainerBuild> baseline = baseline_trainer(*trusted);
    if (!baseline) return failure(baseline.error());
    Result<PreparedSubmission> submission = prepare_submission(run, ctx, *baseline);
    if (!submission) return failure(submission.error());
    report.submission_kind = submission->kind;
    for (const std::string& w : submission->warnings) report.warnings.push_back(w);
    if (!submission->rejected.empty()) {
        report.rejected = submission->rejected;
        return report;
    }

    Result<TaskData> data = prepare_task_inputs(ctx, task);
    if (!data) return failure(data.error());
    spdlog::info("profile {}: baseline and submission, seed {}", task.name, report.seed);
    Result<std::vector<RepResult>> round =
        run_verified_round(ctx, *baseline, {&submission->trainer}, task, *data, report.seed);
    if (!round) return failure(round.error());
    const RepResult& rep = round->front();
    report.baseline_seconds = rep.baseline_seconds;
    report.submission_seconds = rep.submission_seconds;
    report.invalid = rep.verification.reasons;
    report.kernels = kernel_rows(rep, task.train.steps);

    if (!options.sample) {
        report.sampling_note = "not sampled (--no-sample)";
    } else if (!report.invalid.empty()) {
        report.sampling_note = "not sampled: the submission's run is invalid";
    } else if (*sandbox != SandboxMode::bubblewrap) {
        report.sampling_note = "not sampled: sampling runs perf in the bubblewrap sandbox only";
    } else if (const std::string why = perf_unavailable_reason(); !why.empty()) {
        report.sampling_note = "not sampled: " + why;
    } else {
        spdlog::info("profile {}: the submission under perf record", task.name);
        if (Status sampled = sample_submission(ctx, submission->trainer, task, *data, report.seed,
                                               options.top_functions, report);
            !sampled) {
            if (interrupted()) return failure("interrupted");
            report.sampling_note = "not sampled: " + sampled.error();
        }
    }
    return report;
}

// "12.345", or "-" for a time a trainer did not report.
std::string ms_text(double ms) {
    return ms < 0 ? "-" : format_fixed(ms, ms < 10 ? 3 : 1);
}

std::string ratio_text(double baseline_ms, double submission_ms) {
    if (baseline_ms < 0 || submission_ms <= 0) return "-";
    return format_fixed(baseline_ms / submission_ms, 2) + "x";
}

// `text` without the blanks perf pads its columns with.
std::string trimmed(const std::string& text) {
    const size_t begin = text.find_first_not_of(' ');
    if (begin == std::string::npos) return "";
    return text.substr(begin, text.find_last_not_of(' ') - begin + 1);
}

}  // namespace

std::string perf_unavailable_reason() {
    if (!fs::exists(kPerf))
        return std::string(kPerf) + " is not installed (Debian package linux-perf)";
    std::ifstream paranoid(kParanoidFile);
    int level = 0;
    if (!(paranoid >> level)) return "";  // unknown: perf record says for itself
    if (level > 2) {
        return std::string(kParanoidFile) + " is " + std::to_string(level) +
               ", which refuses sampling to the unprivileged user sandboxed runs use; as root: "
               "sysctl kernel.perf_event_paranoid=2";
    }
    return "";
}

std::vector<SampledFunction> parse_perf_report(const std::string& text, int top) {
    std::vector<SampledFunction> rows;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line) && rows.size() < 100000) {
        const size_t first = line.find('|');
        const size_t second = first == std::string::npos ? first : line.find('|', first + 1);
        if (second == std::string::npos) continue;
        char* end = nullptr;
        const std::string overhead = line.substr(0, first);
        const double percent = std::strtod(overhead.c_str(), &end);
        if (end == overhead.c_str() || *end != '%' || !(percent >= 0 && percent <= 100)) continue;
        std::string object = trimmed(line.substr(first + 1, second - first - 1));
        const std::string deleted = kDeletedSuffix;
        if (object.size() > deleted.size() &&
            object.compare(object.size() - deleted.size(), deleted.size(), deleted) == 0)
            object.resize(object.size() - deleted.size());
        std::string symbol = trimmed(line.substr(second + 1));
        for (const char* prefix : {"[.] ", "[k] "})
            if (symbol.rfind(prefix, 0) == 0) symbol = symbol.substr(4);
        rows.push_back({percent, clipped_line(symbol, 100), clipped_line(object, 40)});
    }
    std::stable_sort(
        rows.begin(), rows.end(),
        [](const SampledFunction& a, const SampledFunction& b) { return a.percent > b.percent; });
    if (top >= 0 && rows.size() > (size_t)top) rows.resize((size_t)top);
    return rows;
}

Result<ProfileReport> run_profile(const ProfileOptions& options) {
    try {
        return profile_unguarded(options);
    } catch (const std::exception& e) {
        return failure(std::string("internal error: ") + e.what());
    }
}

int profile_exit_code(const ProfileReport& report) {
    return report.rejected.empty() && report.invalid.empty() ? 0 : 3;
}

std::string profile_to_text(const ProfileReport& r) {
    std::ostringstream out;
    out << "trainopt profile: " << terminal_safe_line(r.task) << " (suite "
        << terminal_safe_line(r.suite) << "), not a score\n\n";
    out << "  submission: " << terminal_safe_line(r.submission) << " ("
        << terminal_safe_line(r.submission_kind) << ")\n";
    out << "  seed " << r.seed << ", " << r.steps << " steps, " << r.threads
        << " threads, sandbox: " << terminal_safe_line(r.sandbox) << "\n";
    for (const std::string& w : r.warnings) out << "  WARNING: " << terminal_safe_line(w) << "\n";
    if (!r.rejected.empty()) {
        out << "\nREJECTED, nothing ran:\n";
        for (const std::string& why : r.rejected) out << "  " << safe_indented(why) << "\n";
        return out.str();
    }
    out << "\n";
    if (!r.invalid.empty()) {
        out << "INVALID: the submission's run does not train the same model; its times mean "
               "little:\n";
        for (const std::string& why : r.invalid) out << "  " << terminal_safe_line(why) << "\n";
        out << "\n";
    }
    const double per_step = r.steps > 0 ? 1000.0 / r.steps : 0;
    std::vector<std::vector<std::string>> rows = {
        {"kernel", "baseline ms/step", "submission ms/step", "ratio"}};
    double baseline_sum = 0, submission_sum = 0;
    for (const KernelTimeRow& k : r.kernels) {
        rows.push_back({clipped_line(k.kernel, 40), ms_text(k.baseline_ms_per_step),
                        ms_text(k.submission_ms_per_step),
                        ratio_text(k.baseline_ms_per_step, k.submission_ms_per_step)});
        baseline_sum += std::max(0.0, k.baseline_ms_per_step);
        submission_sum += std::max(0.0, k.submission_ms_per_step);
    }
    const double baseline_step = r.baseline_seconds * per_step;
    const double submission_step = r.submission_seconds * per_step;
    rows.push_back({"outside the kernels", ms_text(std::max(0.0, baseline_step - baseline_sum)),
                    ms_text(std::max(0.0, submission_step - submission_sum)), ""});
    rows.push_back({"whole run (harness-timed)", ms_text(baseline_step), ms_text(submission_step),
                    ratio_text(baseline_step, submission_step)});
    out << "Time per training step, one run each, the same seed:\n"
        << text_table(rows, {false, true, true, true}, "  ")
        << "  Kernel times are the trainers' own (meta.json kernel_seconds): the submission's are\n"
           "  self-reported and advisory. The whole run is the harness's wall time from spawn to\n"
           "  reap over the task's steps (start-up and data loading included).\n";
    out << "\nTop functions of the submission (perf, cpu-clock samples):\n";
    if (!r.sampled) {
        out << "  " << terminal_safe_line(r.sampling_note) << "\n";
    } else if (r.functions.empty()) {
        out << "  no samples above 0.2%\n";
    } else {
        std::vector<std::vector<std::string>> f = {{"samples", "in", "function"}};
        for (const SampledFunction& s : r.functions)
            f.push_back({format_fixed(s.percent, 1) + "%", s.object, s.function});
        out << text_table(f, {true, false, false}, "  ") << "  "
            << terminal_safe_line(r.sampling_note) << "\n";
    }
    out << "\nNot a score: one run each, nothing repeated; use trainopt score for the speedup.\n";
    return out.str();
}

}  // namespace trainopt
