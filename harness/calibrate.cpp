#include "harness/calibrate.h"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "contract/rng.h"
#include "harness/verify.h"
#include "tasks/data.h"

namespace trainopt {

namespace {

// The window positions of a seed's runs: the same for every twin of the seed.
constexpr uint64_t kWindowStream = 0x63616c6962726174ull;  // "calibrat"

std::string fmt_e(double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.1e", v);
    return buf;
}

std::string fmt_ratio(double r) {
    char buf[32];
    if (r >= 1e4)
        snprintf(buf, sizeof buf, "%.0ex", r);
    else if (r >= 10)
        snprintf(buf, sizeof buf, "%.0fx", r);
    else
        snprintf(buf, sizeof buf, "%.1fx", r);
    return buf;
}

// NaN deviations (a diverged run) count as infinitely far.
double finite_or_inf(double v) {
    return std::isnan(v) ? INFINITY : v;
}

// One training run of the calibration: a twin on a seed of a task, with what can be computed
// from it alone.
struct Job {
    size_t task = 0;
    size_t seed = 0;
    int twin = -1;  // -1: the reference
};

struct JobResult {
    std::vector<float> losses;
    std::vector<float> params;
    double heldout = 0;
    double step_loss = 0;   // max over windows
    double step_state = 0;  // max over windows
};

struct TaskInputs {
    const TaskSpec* spec = nullptr;
    TokenSplit data;
    std::vector<uint64_t> seeds;
    std::vector<std::vector<StepWindow>> windows;  // per seed: the windows' steps, one by one
    int windows_used = 0;
    int window_steps = 0;
};

JobResult run_job(const TaskInputs& in, const Twin& twin, size_t seed_index, bool reference,
                  bool (*stop)()) {
    const TaskSpec& task = *in.spec;
    const uint64_t seed = in.seeds[seed_index];
    const std::vector<StepWindow> no_windows;
    const std::vector<StepWindow>& windows = reference ? no_windows : in.windows[seed_index];
    TwinRun run = run_twin(task, in.data.train, seed, twin, windows, stop);
    JobResult r;
    if (stop != nullptr && stop()) return r;
    r.heldout = heldout_loss(task, run.params, in.data.heldout);
    // each window one step at a time, as the verifier checks it (harness/replay.h)
    for (size_t w = 0; w < windows.size(); w++) {
        const WindowDeviation d = check_step(task, in.data.train, seed, run.window_starts[w],
                                             run.losses[windows[w].start], run.window_ends[w]);
        r.step_loss = std::max(r.step_loss, finite_or_inf(d.max_loss_diff));
        r.step_state = std::max(r.step_state, finite_or_inf(d.state_rel()));
    }
    r.losses = std::move(run.losses);
    r.params = std::move(run.params);
    return r;
}

Deviations deviations_of(const JobResult& ref, const JobResult& twin,
                         const std::vector<float>& init) {
    Deviations d{};
    double loss = 0;
    for (size_t s = 0; s < ref.losses.size() && s < twin.losses.size(); s++)
        loss = std::max(loss, finite_or_inf(std::fabs((double)twin.losses[s] - ref.losses[s])));
    d[(int)Metric::loss] = loss;
    d[(int)Metric::heldout] = finite_or_inf(std::fabs(twin.heldout - ref.heldout));
    d[(int)Metric::weights] = finite_or_inf(relative_distance(twin.params, ref.params, init));
    d[(int)Metric::step_loss] = twin.step_loss;
    d[(int)Metric::step_state] = twin.step_state;
    return d;
}

struct MetricSpec {
    Metric metric;
    const char* key;
    double Tolerances::*field;
};

std::vector<MetricSpec> metrics_of(CheckKind check) {
    if (check == CheckKind::trajectory) {
        return {{Metric::loss, "loss_abs", &Tolerances::loss_abs},
                {Metric::heldout, "heldout_abs", &Tolerances::heldout_abs},
                {Metric::weights, "weights_rel", &Tolerances::weights_rel}};
    }
    return {{Metric::step_loss, "step_loss_abs", &Tolerances::step_loss_abs},
            {Metric::step_state, "step_state_rel", &Tolerances::step_state_rel},
            {Metric::heldout, "heldout_band", &Tolerances::heldout_band}};
}

// The rule (kCalibrationMargin on the cheats' side, `legitimate_margin` on the legitimate side)
// applied to one check. The tolerances come from the cheats every task must catch and from the
// suite-wide cheat `tightening` (empty: none) only; any cheat is caught when one metric's
// tolerance is exceeded by the margin.
CheckCalibration calibrate_check(CheckKind check, const std::vector<TwinResult>& twins,
                                 const TaskSpec& task, const std::string& tightening,
                                 double legitimate_margin) {
    const Tolerances& current = task.tolerances;
    CheckCalibration c;
    c.check = check;
    std::set<std::string> caught;
    for (const MetricSpec& spec : metrics_of(check)) {
        MetricCalibration m;
        m.metric = spec.metric;
        m.key = spec.key;
        m.current = current.*spec.field;
        const int i = (int)spec.metric;
        for (const TwinResult& t : twins)
            if (t.kind == TwinKind::legitimate) m.legitimate = std::max(m.legitimate, t.summary[i]);
        const double legit = std::max(m.legitimate, deviation_floor(spec.metric, task));
        double smallest_separated = INFINITY;
        for (const TwinResult& t : twins) {
            if (t.kind != TwinKind::cheating) continue;
            const double ratio = t.summary[i] / legit;
            m.ratios.push_back(ratio);
            if (ratio >= legitimate_margin * kCalibrationMargin &&
                (!t.suite_wide || t.name == tightening))
                smallest_separated = std::min(smallest_separated, t.summary[i]);
        }
        m.smallest_separated = smallest_separated;
        // the geometric mean of the two margins' bounds (of legit and the cheat when both are
        // kCalibrationMargin); a metric that separates nothing keeps the legitimate side's
        // margin only
        m.tolerance =
            std::isfinite(smallest_separated)
                ? std::sqrt(legitimate_margin * legit * smallest_separated / kCalibrationMargin)
                : legit * legitimate_margin * kCalibrationMargin;
        for (const TwinResult& t : twins) {
            if (t.kind == TwinKind::cheating && t.summary[i] >= kCalibrationMargin * m.tolerance) {
                m.separates.push_back(t.name);
                caught.insert(t.name);
            }
        }
        c.metrics.push_back(std::move(m));
    }
    for (const TwinResult& t : twins)
        if (t.kind == TwinKind::cheating && !caught.contains(t.name)) c.missed.push_back(t.name);
    return c;
}

std::string check_name(CheckKind check) {
    return check == CheckKind::trajectory ? "trajectory" : "local";
}

// The cheat's position among the cheating twins (MetricCalibration::ratios).
int cheat_index(const std::vector<TwinResult>& twins, const std::string& cheat) {
    int index = 0;
    for (const TwinResult& t : twins) {
        if (t.kind != TwinKind::cheating) continue;
        if (t.name == cheat) break;
        index++;
    }
    return index;
}

// The best ratio any metric of the check reaches on the cheat, and which metric.
std::string best_ratio(const CheckCalibration& c, const std::vector<TwinResult>& twins,
                       const std::string& cheat) {
    const int index = cheat_index(twins, cheat);
    double best = 0;
    std::string key;
    for (const MetricCalibration& m : c.metrics) {
        if (m.ratios[index] > best || key.empty()) {
            best = m.ratios[index];
            key = m.key;
        }
    }
    return cheat + " at most " + fmt_ratio(best) + " above legitimate (" + key + ")";
}

std::string missed_list(const CheckCalibration& c, const std::vector<TwinResult>& twins,
                        bool task_cheats_only) {
    std::string out;
    for (const std::string& name : c.missed) {
        const auto it = std::find_if(twins.begin(), twins.end(),
                                     [&](const TwinResult& t) { return t.name == name; });
        if (task_cheats_only && it->suite_wide) continue;
        out += (out.empty() ? "" : "; ") + best_ratio(c, twins, name);
    }
    return out;
}

bool measured_cheats(const TaskCalibration& t) {
    return std::any_of(t.twins.begin(), t.twins.end(),
                       [](const TwinResult& twin) { return twin.kind == TwinKind::cheating; });
}

// Without cheats (--legitimate-only): whether the task's own check and tolerances admit the
// legitimate twin on every seed measured.
void judge_legitimate_only(TaskCalibration& t, const TaskSpec& task) {
    const CheckCalibration& c = task.verify.check == CheckKind::trajectory ? t.trajectory : t.local;
    std::string within, over;
    for (const MetricCalibration& m : c.metrics) {
        const std::string cell = m.key + " " + fmt_e(m.legitimate) + " of " + fmt_e(m.current);
        std::string& list = m.legitimate <= m.current ? within : over;
        list += (list.empty() ? "" : ", ") + cell;
    }
    t.tolerances = task.tolerances;
    if (over.empty()) {
        t.recommended = task.verify.check;
        t.verdict = "legitimate twin only: within the task's " + check_name(c.check) +
                    " tolerances on every seed (largest " + within + ")";
    } else {
        t.verdict = "legitimate twin only: OVER the task's " + check_name(c.check) +
                    " tolerances (" + over + "); a legitimate reordering would be rejected";
    }
}

// Why the recommended check, or what to change when there is none.
void decide(TaskCalibration& t, const TaskSpec& task, double legitimate_margin) {
    if (!measured_cheats(t)) {
        judge_legitimate_only(t, task);
        return;
    }
    const double need = legitimate_margin * kCalibrationMargin;
    if (t.trajectory.separates_task_cheats(t.twins)) {
        t.recommended = CheckKind::trajectory;
    } else if (t.local.separates_task_cheats(t.twins)) {
        t.recommended = CheckKind::local;
    }
    t.tolerances = task.tolerances;
    if (t.recommended) {
        const CheckCalibration& c =
            *t.recommended == CheckKind::trajectory ? t.trajectory : t.local;
        for (const MetricCalibration& m : c.metrics)
            for (const MetricSpec& spec : metrics_of(c.check))
                if (spec.metric == m.metric) t.tolerances.*spec.field = m.tolerance;
        t.verdict = check_name(*t.recommended) + ": catches every cheat with tolerances " +
                    (legitimate_margin == kCalibrationMargin
                         ? fmt_ratio(kCalibrationMargin) + " or more from both sides"
                         : fmt_ratio(legitimate_margin) + " or more above legitimate runs and " +
                               fmt_ratio(kCalibrationMargin) + " below cheats");
        if (*t.recommended == CheckKind::local)
            t.verdict += "; trajectory does not (" + missed_list(t.trajectory, t.twins, true) + ")";
        if (!c.missed.empty())
            t.verdict += "; not caught here, left to the suite: " + missed_list(c, t.twins, false);
        if (!t.tightened_by.empty())
            t.verdict +=
                "; catches " + t.tightened_by + " for the suite (its tolerances tightened)";
        return;
    }
    std::string what = "refused: no check separates legitimate from cheating runs by " +
                       fmt_ratio(need) + ". trajectory misses " +
                       missed_list(t.trajectory, t.twins, true) + ". local misses " +
                       missed_list(t.local, t.twins, true) + ". Change the task: ";
    std::vector<std::string> advice;
    const double legit_loss = t.trajectory.metrics[0].legitimate;
    const bool chaotic = legit_loss > task.tolerances.loss_abs / kCalibrationMargin;
    if (chaotic)
        advice.push_back("the whole run amplifies fp32 reordering (legitimate loss deviation " +
                         fmt_e(legit_loss) +
                         "): lower the learning rate, train fewer steps or raise Adam's eps");
    if (!t.local.separates_task_cheats(t.twins))
        advice.push_back(
            "check more steps locally: more windows or larger window_steps in "
            "[verify] (now " +
            std::to_string(t.windows) + " x " + std::to_string(t.window_steps) + " of " +
            std::to_string(t.steps) + " steps)");
    if (!chaotic)
        advice.push_back(
            "train more steps or larger batches, so that a cheat's effect grows "
            "above rounding");
    for (size_t i = 0; i < advice.size(); i++) what += (i ? "; " : "") + advice[i];
    t.verdict = what;
}

// The rule applied to measured tasks (twins' per-seed deviations filled in); specs[i] is the
// spec of report.tasks[i].
void apply_rule(CalibrationReport& report, const std::vector<const TaskSpec*>& specs) {
    report.suite_problems.clear();
    for (size_t t = 0; t < report.tasks.size(); t++) {
        TaskCalibration& tc = report.tasks[t];
        const TaskSpec& task = *specs[t];
        for (TwinResult& twin : tc.twins) {
            for (int i = 0; i < kNumMetrics; i++) {
                double v = twin.kind == TwinKind::legitimate ? 0 : INFINITY;
                for (const Deviations& d : twin.seeds)
                    v = twin.kind == TwinKind::legitimate ? std::max(v, d[i]) : std::min(v, d[i]);
                twin.summary[i] = v;
            }
        }
        const double lm = report.legitimate_margin;
        tc.trajectory = calibrate_check(CheckKind::trajectory, tc.twins, task, "", lm);
        tc.local = calibrate_check(CheckKind::local, tc.twins, task, "", lm);
        tc.tightened_by.clear();
        decide(tc, task, lm);
    }

    // a suite-wide cheat must be caught by at least one accepted task: the one that separates it
    // best tightens its tolerances for it, unless one catches it already
    if (report.tasks.empty()) return;
    const std::vector<TwinResult> twins = report.tasks[0].twins;
    for (const TwinResult& twin : twins) {
        if (!twin.suite_wide) continue;
        TaskCalibration* best = nullptr;
        double best_ratio = 0;
        bool caught = false;
        for (TaskCalibration& tc : report.tasks) {
            if (!tc.recommended) continue;
            const CheckCalibration& c =
                *tc.recommended == CheckKind::trajectory ? tc.trajectory : tc.local;
            if (std::find(c.missed.begin(), c.missed.end(), twin.name) == c.missed.end())
                caught = true;
            const int k = cheat_index(tc.twins, twin.name);
            for (const MetricCalibration& m : c.metrics) {
                if (m.ratios[k] > best_ratio) {
                    best_ratio = m.ratios[k];
                    best = &tc;
                }
            }
        }
        if (caught) continue;
        if (best != nullptr && best_ratio >= report.legitimate_margin * kCalibrationMargin) {
            const TaskSpec& task = *specs[best - report.tasks.data()];
            CheckCalibration& c =
                *best->recommended == CheckKind::trajectory ? best->trajectory : best->local;
            c = calibrate_check(c.check, best->twins, task, twin.name, report.legitimate_margin);
            best->tightened_by = twin.name;
            decide(*best, task, report.legitimate_margin);
            continue;
        }
        if (report.whole_suite) {
            report.suite_problems.push_back(
                "no task of the suite catches " + twin.name + " (" + twin.description +
                "): add a verification task built to show it (docs/tolerances.md, "
                "\"Approximated math\"), or calibrate it with the suite's other tasks");
        }
    }
}

}  // namespace

const char* metric_name(Metric metric) {
    switch (metric) {
        case Metric::loss:
            return "loss";
        case Metric::heldout:
            return "heldout";
        case Metric::weights:
            return "weights";
        case Metric::step_loss:
            return "step_loss";
        case Metric::step_state:
            return "step_state";
    }
    return "?";
}

double deviation_floor(Metric metric, const TaskSpec& task) {
    if (metric == Metric::weights || metric == Metric::step_state) return kDeviationFloor;
    const float initial_loss = std::log((float)std::max(2, task.model.vocab_size));
    const double ulp = std::nextafter(initial_loss, INFINITY) - initial_loss;
    return std::max(kDeviationFloor, kLossFloorUlps * ulp);
}

bool CheckCalibration::separates_task_cheats(const std::vector<TwinResult>& twins) const {
    for (const std::string& name : missed)
        for (const TwinResult& t : twins)
            if (t.name == name && !t.suite_wide) return false;
    return true;
}

bool CalibrationReport::accepted() const {
    if (!suite_problems.empty()) return false;
    for (const TaskCalibration& t : tasks)
        if (!t.recommended) return false;
    return true;
}

Result<CalibrationReport> calibrate_suite(const Suite& suite, const CalibrateOptions& options) {
    if (options.seeds < 1) return failure("--seeds must be at least 1");
    for (const std::string& name : options.only_tasks) {
        if (std::none_of(suite.tasks.begin(), suite.tasks.end(),
                         [&](const TaskSpec& t) { return t.name == name; }))
            return failure("suite " + suite.name + " has no task " + name);
    }
    const Twin reference = reference_twin();
    std::vector<Twin> twins = calibration_twins();
    if (options.legitimate_only)
        std::erase_if(twins, [](const Twin& t) { return t.kind != TwinKind::legitimate; });

    // inputs: data, the seeds `trainopt score --seed base` gives the task, windows per seed
    std::vector<TaskInputs> inputs;
    for (size_t index = 0; index < suite.tasks.size(); index++) {
        const TaskSpec& task = suite.tasks[index];
        if (!options.only_tasks.empty() &&
            std::find(options.only_tasks.begin(), options.only_tasks.end(), task.name) ==
                options.only_tasks.end())
            continue;
        TaskInputs in;
        in.spec = &task;
        Result<TokenSplit> data = make_task_data(task);
        if (!data) return failure("task " + task.name + ": " + data.error());
        in.data = std::move(*data);
        const int steps = task.train.steps;
        in.window_steps = std::clamp(task.verify.window_steps, 1, steps);
        in.windows_used = std::clamp(task.verify.windows, 1, steps / in.window_steps);
        Rng seeds(options.base_seed + index);
        for (int r = 0; r < options.seeds; r++) {
            in.seeds.push_back(seeds.next_u64() >> 16);
            Rng windows(in.seeds.back() ^ kWindowStream);
            in.windows.push_back(single_steps(
                pick_windows(steps, in.windows_used, in.window_steps, windows.next_u64())));
        }
        inputs.push_back(std::move(in));
    }

    std::vector<Job> jobs;
    for (size_t t = 0; t < inputs.size(); t++)
        for (size_t s = 0; s < inputs[t].seeds.size(); s++)
            for (int w = -1; w < (int)twins.size(); w++) jobs.push_back({t, s, w});
    // the slowest tasks first, so the last runs on the cores are short ones
    std::stable_sort(jobs.begin(), jobs.end(), [&](const Job& a, const Job& b) {
        const TaskSpec& ta = *inputs[a.task].spec;
        const TaskSpec& tb = *inputs[b.task].spec;
        return training_step_flops(ta) * ta.train.steps > training_step_flops(tb) * tb.train.steps;
    });
    std::vector<JobResult> results(jobs.size());
    const auto started = std::chrono::steady_clock::now();
    const int threads =
        options.threads > 0 ? options.threads : (int)tbb::this_task_arena::max_concurrency();
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, (size_t)threads);
    tbb::parallel_for(
        (size_t)0, jobs.size(),
        [&](size_t j) {
            const Job& job = jobs[j];
            const Twin& twin = job.twin < 0 ? reference : twins[job.twin];
            if (options.stop != nullptr && options.stop()) return;
            results[j] = run_job(inputs[job.task], twin, job.seed, job.twin < 0, options.stop);
            if (options.stop != nullptr && options.stop()) return;
            if (options.progress) {
                const std::chrono::duration<double> elapsed =
                    std::chrono::steady_clock::now() - started;
                fprintf(stderr, "[calibrate %6.0f s] %s seed %zu/%zu: %s done\n", elapsed.count(),
                        inputs[job.task].spec->name.c_str(), job.seed + 1,
                        inputs[job.task].seeds.size(), twin.name.c_str());
            }
        },
        tbb::simple_partitioner());

    if (options.stop != nullptr && options.stop()) return failure("calibration interrupted");

    CalibrationReport report;
    report.suite = suite.name;
    report.base_seed = options.base_seed;
    report.seeds = options.seeds;
    report.legitimate_margin = options.legitimate_margin;
    report.whole_suite = inputs.size() == suite.tasks.size();
    for (size_t t = 0; t < inputs.size(); t++) {
        const TaskInputs& in = inputs[t];
        const TaskSpec& task = *in.spec;
        TaskCalibration tc;
        tc.task = task.name;
        tc.steps = task.train.steps;
        tc.seeds = in.seeds;
        tc.windows = in.windows_used;
        tc.window_steps = in.window_steps;
        for (const Twin& twin : twins)
            tc.twins.push_back({twin.name, twin.description, twin.kind, twin.suite_wide, {}, {}});
        for (size_t s = 0; s < in.seeds.size(); s++) {
            auto result_of = [&](int twin) -> const JobResult& {
                for (size_t j = 0; j < jobs.size(); j++)
                    if (jobs[j].task == t && jobs[j].seed == s && jobs[j].twin == twin)
                        return results[j];
                return results[0];  // unreachable: every job exists
            };
            const JobResult& ref = result_of(-1);
            const TrainingState init = initial_state(gpt_config_of(task), in.seeds[s]);
            for (size_t w = 0; w < twins.size(); w++)
                tc.twins[w].seeds.push_back(deviations_of(ref, result_of((int)w), init.params));
        }
        report.tasks.push_back(std::move(tc));
    }
    std::vector<const TaskSpec*> specs;
    for (const TaskInputs& in : inputs) specs.push_back(in.spec);
    apply_rule(report, specs);
    return report;
}

std::string calibration_table(const CalibrationReport& report) {
    std::ostringstream out;
    char line[512];
    out << "calibration of suite " << report.suite << ": " << report.seeds
        << " seeds per task (--seed " << report.base_seed << ")\n";
    if (!report.tasks.empty() && !measured_cheats(report.tasks.front()))
        out << "legitimate twin only: compare legit (its largest deviation) with now (the task's "
               "tolerance); the tolerance column is what 9x legit would give\n";
    out << "rule: a tolerance is the geometric mean of the legitimate twin's largest deviation "
           "and the smallest one of the cheats >= "
        << report.legitimate_margin * kCalibrationMargin
        << "x above it (suite-wide cheats: on the task that separates them best only)\n"
        << "cells: legitimate = max over seeds; cheats = min over seeds, then x legitimate "
           "(* = caught: >= "
        << kCalibrationMargin << "x the tolerance)\n";
    for (const TaskCalibration& t : report.tasks) {
        out << "\ntask " << t.task << ": " << t.steps << " steps, local windows " << t.windows
            << " x " << t.window_steps << " steps\n";
        snprintf(line, sizeof line, "  %-11s %-15s %-9s", "check", "metric", "legit");
        out << line;
        for (const TwinResult& tw : t.twins)
            if (tw.kind == TwinKind::cheating) {
                snprintf(line, sizeof line, " %-17s", tw.name.c_str());
                out << line;
            }
        snprintf(line, sizeof line, " %-9s %-9s\n", "tolerance", "now");
        out << line;
        for (const CheckCalibration* c : {&t.trajectory, &t.local}) {
            bool first = true;
            for (const MetricCalibration& m : c->metrics) {
                snprintf(line, sizeof line, "  %-11s %-15s %-9s",
                         first ? check_name(c->check).c_str() : "", m.key.c_str(),
                         fmt_e(m.legitimate).c_str());
                out << line;
                first = false;
                int k = 0;
                for (const TwinResult& tw : t.twins) {
                    if (tw.kind != TwinKind::cheating) continue;
                    const double ratio = m.ratios[k++];
                    const bool separated = std::find(m.separates.begin(), m.separates.end(),
                                                     tw.name) != m.separates.end();
                    const std::string cell = fmt_e(tw.summary[(int)m.metric]) + " " +
                                             fmt_ratio(ratio) + (separated ? "*" : "");
                    snprintf(line, sizeof line, " %-17s", cell.c_str());
                    out << line;
                }
                snprintf(line, sizeof line, " %-9s %-9s\n", fmt_e(m.tolerance).c_str(),
                         fmt_e(m.current).c_str());
                out << line;
            }
        }
        out << "  -> " << t.verdict << "\n";
    }
    for (const std::string& problem : report.suite_problems) out << "\nsuite: " << problem << "\n";
    if (!report.whole_suite)
        out << "\nsuite-wide cheats (one task of the suite must catch them) are judged on the "
               "whole suite only: not checked with --task\n";
    out << "\n"
        << (report.accepted() ? "calibration: every task accepted"
                              : "calibration: REFUSED (see above)")
        << "\n";
    return out.str();
}

std::string calibration_json(const CalibrationReport& report) {
    using nlohmann::json;
    auto number = [](double v) -> json { return std::isfinite(v) ? json(v) : json(nullptr); };
    auto deviations = [&](const Deviations& d) {
        json j = json::object();
        for (int i = 0; i < kNumMetrics; i++) j[metric_name((Metric)i)] = number(d[i]);
        return j;
    };
    json root;
    root["suite"] = report.suite;
    root["base_seed"] = report.base_seed;
    root["seeds"] = report.seeds;
    root["margin"] = kCalibrationMargin;
    root["legitimate_margin"] = report.legitimate_margin;
    root["deviation_floor"] = kDeviationFloor;
    root["rule"] =
        "per metric, a cheat is separated when its smallest deviation over the seeds is at least "
        "legitimate_margin x margin times the legitimate twin's largest (floored at "
        "deviation_floor); the tolerance is the geometric mean of legitimate_margin x the "
        "legitimate maximum and the smallest separated cheat minimum / margin (cheats every task "
        "must catch, and a suite-wide cheat only on the task that separates it best), or "
        "legitimate_margin x margin times the legitimate maximum when none is separated; a cheat "
        "is caught when it exceeds a tolerance of the check by the margin";
    root["whole_suite"] = report.whole_suite;
    root["accepted"] = report.accepted();
    root["suite_problems"] = report.suite_problems;
    root["tasks"] = json::array();
    for (const TaskCalibration& t : report.tasks) {
        json task;
        task["task"] = t.task;
        task["steps"] = t.steps;
        task["seeds"] = t.seeds;
        task["windows"] = t.windows;
        task["window_steps"] = t.window_steps;
        task["twins"] = json::array();
        for (const TwinResult& tw : t.twins) {
            json j;
            j["name"] = tw.name;
            j["description"] = tw.description;
            j["kind"] = tw.kind == TwinKind::legitimate ? "legitimate" : "cheating";
            j["suite_wide"] = tw.suite_wide;
            j["per_seed"] = json::array();
            for (const Deviations& d : tw.seeds) j["per_seed"].push_back(deviations(d));
            j[tw.kind == TwinKind::legitimate ? "max" : "min"] = deviations(tw.summary);
            task["twins"].push_back(j);
        }
        for (const CheckCalibration* c : {&t.trajectory, &t.local}) {
            json check;
            check["separates_every_task_cheat"] = c->separates_task_cheats(t.twins);
            check["missed"] = c->missed;
            check["metrics"] = json::array();
            for (const MetricCalibration& m : c->metrics) {
                json jm;
                jm["metric"] = metric_name(m.metric);
                jm["key"] = m.key;
                jm["legitimate_max"] = number(m.legitimate);
                jm["tolerance"] = number(m.tolerance);
                jm["current"] = number(m.current);
                jm["separates"] = m.separates;
                json ratios = json::object();
                int k = 0;
                for (const TwinResult& tw : t.twins)
                    if (tw.kind == TwinKind::cheating) ratios[tw.name] = number(m.ratios[k++]);
                jm["cheat_ratios"] = ratios;
                check["metrics"].push_back(jm);
            }
            task[check_name(c->check)] = check;
        }
        task["recommended"] = t.recommended ? json(check_name(*t.recommended)) : json(nullptr);
        task["verdict"] = t.verdict;
        task["toml"] = tolerance_snippet(t);
        root["tasks"].push_back(task);
    }
    return root.dump(2) + "\n";
}

Result<CalibrationReport> recalibrate(const Suite& suite,
                                      const std::vector<std::string>& json_texts,
                                      const std::vector<std::string>& names) {
    using nlohmann::json;
    CalibrationReport report;
    report.suite = suite.name;
    std::vector<const TaskSpec*> specs;
    auto number = [](const json& j) { return j.is_number() ? j.get<double>() : INFINITY; };
    for (size_t f = 0; f < json_texts.size(); f++) {
        const json root = json::parse(json_texts[f], nullptr, false);
        const std::string& name = names[f];
        if (root.is_discarded() || !root.is_object() || !root.contains("tasks") ||
            !root["tasks"].is_array())
            return failure(name + " is not the JSON of trainopt calibrate");
        try {
            report.base_seed = root.at("base_seed").get<uint64_t>();
            report.seeds = root.at("seeds").get<int>();
            if (root.contains("legitimate_margin")) {
                report.legitimate_margin = root["legitimate_margin"].get<double>();
                if (!(report.legitimate_margin >= 1 && report.legitimate_margin <= 1e6))
                    return failure(name + ": legitimate_margin must be within 1 and 1e6");
            }
            for (const json& jt : root["tasks"]) {
                TaskCalibration tc;
                tc.task = jt.at("task").get<std::string>();
                const auto spec =
                    std::find_if(suite.tasks.begin(), suite.tasks.end(),
                                 [&](const TaskSpec& t) { return t.name == tc.task; });
                if (spec == suite.tasks.end())
                    return failure(name + ": suite " + suite.name + " has no task " + tc.task);
                tc.steps = jt.at("steps").get<int>();
                tc.seeds = jt.at("seeds").get<std::vector<uint64_t>>();
                tc.windows = jt.at("windows").get<int>();
                tc.window_steps = jt.at("window_steps").get<int>();
                for (const json& jw : jt.at("twins")) {
                    TwinResult tw;
                    tw.name = jw.at("name").get<std::string>();
                    tw.description = jw.at("description").get<std::string>();
                    tw.kind =
                        jw.at("kind") == "legitimate" ? TwinKind::legitimate : TwinKind::cheating;
                    tw.suite_wide = jw.at("suite_wide").get<bool>();
                    for (const json& jd : jw.at("per_seed")) {
                        Deviations d{};
                        for (int i = 0; i < kNumMetrics; i++)
                            d[i] = number(jd.at(metric_name((Metric)i)));
                        tw.seeds.push_back(d);
                    }
                    tc.twins.push_back(std::move(tw));
                }
                specs.push_back(&*spec);
                report.tasks.push_back(std::move(tc));
            }
        } catch (const json::exception& e) {
            return failure(name + ": " + e.what());
        }
    }
    std::set<std::string> covered;
    for (const TaskCalibration& tc : report.tasks) covered.insert(tc.task);
    report.whole_suite = covered.size() == suite.tasks.size();
    apply_rule(report, specs);
    return report;
}

std::string tolerance_snippet(const TaskCalibration& t) {
    if (!t.recommended || !measured_cheats(t)) return "";
    std::ostringstream out;
    char line[128];
    out << "# trainopt calibrate: task " << t.task << "\n[verify]\ncheck = \""
        << check_name(*t.recommended) << "\"\n";
    if (*t.recommended == CheckKind::local)
        out << "windows = " << t.windows << "\nwindow_steps = " << t.window_steps << "\n";
    out << "\n[tolerances]\n";
    const CheckCalibration& c = *t.recommended == CheckKind::trajectory ? t.trajectory : t.local;
    for (const MetricCalibration& m : c.metrics) {
        snprintf(line, sizeof line, "%s = %.2g\n", m.key.c_str(), m.tolerance);
        out << line;
    }
    return out.str();
}

}  // namespace trainopt
