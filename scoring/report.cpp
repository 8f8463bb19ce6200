#include "scoring/report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "scoring/untrusted_text.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

std::string fixed(double v, int digits) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*f", digits, v);
    return buf;
}

// The speed-of-light column needs the machine peak, which `verify` does not measure.
std::string speed_of_light_text(const TaskReport& t) {
    return t.speed_of_light_speedup > 0 ? fixed(t.speed_of_light_speedup, 0) + "x" : "n/a";
}

// Every string in a report may be untrusted (a submission's log tail or file name, kernel
// names from its meta.json, anything in a JSON report loaded back), so every one is rendered
// through scoring/untrusted_text.h: markdown_inline() or html_text(), never raw.

// True when s holds something besides blanks from pos on.
bool has_text_from(const std::string& s, size_t pos) {
    return pos < s.size() && s.find_first_not_of(" \t\n", pos) != std::string::npos;
}

// One Markdown Findings item: label (already Markdown), the message's first line inline, and
// the rest (a log or compiler output tail) in a fenced block inside the item.
std::string md_finding(const std::string& label, const std::string& message) {
    const std::string safe = terminal_safe(message);
    const size_t eol = safe.find('\n');
    std::string item = "- " + label + markdown_inline(safe.substr(0, eol)) + "\n";
    if (eol != std::string::npos && has_text_from(safe, eol + 1))
        item += markdown_fenced_block(safe.substr(eol + 1), "  ");
    return item;
}

// The HTML counterpart: the first line inline, the rest preformatted.
std::string html_finding(const std::string& message) {
    const std::string safe = terminal_safe(message);
    const size_t eol = safe.find('\n');
    std::string html = html_text(safe.substr(0, eol));
    if (eol != std::string::npos && has_text_from(safe, eol + 1))
        html += "<pre>" + html_text(safe.substr(eol + 1)) + "</pre>";
    return html;
}

TaskTimes times_of(const TaskReport& t) {
    return {t.baseline_seconds, t.submission_seconds, t.valid};
}

}  // namespace

namespace {

// The speed-of-light backstop (report.h, docs/scoring.md). Checks every repetition of every task
// that is still valid; idempotent, since a task it invalidated is no longer valid the next time
// (finalize_report runs after every repetition and again when a report is loaded).
void apply_backstop(ScoreReport& report) {
    report.backstop_margin = kBackstopMargin;
    const FmaCeiling& ceiling = report.fma_ceiling;
    const bool usable = ceiling.gflops > 0 && ceiling.not_a_ceiling.empty();
    bool any_runs = false;
    for (TaskReport& t : report.tasks) {
        t.backstop_seconds = t.backstop_fraction = 0;
        any_runs = any_runs || !t.submission_seconds.empty();
        if (!usable || !(t.step_gflop > 0) || t.steps <= 0) continue;
        t.backstop_seconds = t.steps * t.step_gflop / ceiling.gflops;
        if (t.submission_seconds.empty()) continue;
        const auto fastest =
            std::min_element(t.submission_seconds.begin(), t.submission_seconds.end());
        t.backstop_fraction = t.backstop_seconds / *fastest;
        if (!t.valid || !(*fastest < t.backstop_seconds / (1 + kBackstopMargin))) continue;
        char detail[512];
        snprintf(detail, sizeof(detail),
                 ": repetition %d ran in %.4f s, but the task's %.2f GFLOP of matmul multiply-adds "
                 "(%d steps of %.4g) take at least %.4f s at this machine's FMA ceiling of %.1f "
                 "GFLOP/s (%s, %d threads); that run reached %.0f%% of the bound, and only a "
                 "margin of %.0f%% is allowed for measurement",
                 (int)(fastest - t.submission_seconds.begin()) + 1, *fastest,
                 t.steps * t.step_gflop, t.steps, t.step_gflop, t.backstop_seconds, ceiling.gflops,
                 ceiling.isa.c_str(), ceiling.threads, 100 * t.backstop_fraction,
                 100 * kBackstopMargin);
        t.valid = false;
        t.reasons.push_back(kBackstopReason + std::string(detail));
    }
    // Say so when the backstop could not run (a report from before it, or a CPU whose FMA loop
    // is no ceiling); a refused submission has no runs to check.
    if (!any_runs || !report.rejected.empty() || usable) return;
    const std::string warning =
        "speed-of-light backstop not applied: " +
        (ceiling.gflops > 0 ? ceiling.not_a_ceiling
                            : std::string("the machine's FMA ceiling was not measured"));
    if (std::find(report.warnings.begin(), report.warnings.end(), warning) == report.warnings.end())
        report.warnings.push_back(warning);
}

}  // namespace

void finalize_report(ScoreReport& report) {
    apply_backstop(report);
    std::vector<TaskTimes> all;
    bool all_valid = true;
    for (size_t i = 0; i < report.tasks.size(); i++) {
        TaskReport& t = report.tasks[i];
        TaskTimes times = times_of(t);
        t.speedup = task_speedup(times);
        std::vector<double> boot = bootstrap_task_speedup(times, 2000, 777 + i);
        t.speedup_ci = {percentile(boot, 2.5), percentile(boot, 97.5)};
        if (report.peak_gflops > 0 && t.step_gflop > 0 && !t.baseline_seconds.empty()) {
            t.speed_of_light_seconds = t.steps * t.step_gflop / report.peak_gflops;
            t.speed_of_light_speedup = median(t.baseline_seconds) / t.speed_of_light_seconds;
        }
        all.push_back(times);
        all_valid = all_valid && t.valid;
    }
    report.summary = summarize_suite(all);
    if (!report.rejected.empty()) {
        report.verdict = "REJECTED";
    } else {
        report.verdict = !report.complete ? "INCOMPLETE" : (all_valid ? "VALID" : "INVALID");
    }
}

nlohmann::json report_to_json(const ScoreReport& r) {
    nlohmann::json j;
    j["schema_version"] = r.schema_version;
    j["created_at"] = r.created_at;
    j["submission"] = {{"path", r.submission}, {"kind", r.submission_kind}};
    j["suite"] = r.suite;
    j["machine"] = {{"sandbox", r.sandbox},
                    {"threads", r.threads},
                    {"peak_gflops", r.peak_gflops},
                    {"fma_ceiling",
                     {{"gflops", r.fma_ceiling.gflops},
                      {"isa", r.fma_ceiling.isa},
                      {"threads", r.fma_ceiling.threads},
                      {"trials", r.fma_ceiling.trials},
                      {"seconds", r.fma_ceiling.seconds},
                      {"not_a_ceiling", r.fma_ceiling.not_a_ceiling}}},
                    {"backstop_margin", r.backstop_margin}};
    j["reps"] = r.reps;
    j["seed"] = r.seed;
    j["complete"] = r.complete;
    j["verdict"] = r.verdict;
    j["score"] = {
        {"arithmetic_mean", r.summary.arithmetic},
        {"arithmetic_mean_ci95", {r.summary.arithmetic_ci.low, r.summary.arithmetic_ci.high}},
        {"geometric_mean", r.summary.geometric},
        {"geometric_mean_ci95", {r.summary.geometric_ci.low, r.summary.geometric_ci.high}},
        {"human_reference", r.human_reference},
        {"multiple_of_human_reference", r.summary.arithmetic / r.human_reference}};
    j["warnings"] = r.warnings;
    j["rejected"] = r.rejected;
    j["tasks"] = nlohmann::json::array();
    for (const TaskReport& t : r.tasks) {
        j["tasks"].push_back({{"name", t.name},
                              {"hot_spot", t.hot_spot},
                              {"valid", t.valid},
                              {"reasons", t.reasons},
                              {"warnings", t.warnings},
                              {"seeds", t.seeds},
                              {"baseline_seconds", t.baseline_seconds},
                              {"submission_seconds", t.submission_seconds},
                              {"speedup", t.speedup},
                              {"speedup_ci95", {t.speedup_ci.low, t.speedup_ci.high}},
                              {"steps", t.steps},
                              {"step_gflop", t.step_gflop},
                              {"speed_of_light_seconds", t.speed_of_light_seconds},
                              {"speed_of_light_speedup", t.speed_of_light_speedup},
                              {"backstop_seconds", t.backstop_seconds},
                              {"backstop_fraction", t.backstop_fraction},
                              {"max_loss_diff", t.max_loss_diff},
                              {"max_heldout_diff", t.max_heldout_diff},
                              {"max_weight_distance", t.max_weight_distance},
                              {"baseline_peak_rss_mb", t.baseline_peak_rss_mb},
                              {"submission_peak_rss_mb", t.submission_peak_rss_mb},
                              {"baseline_kernel_seconds", t.baseline_kernel_seconds},
                              {"submission_kernel_seconds", t.submission_kernel_seconds}});
    }
    return j;
}

bool report_from_json(const nlohmann::json& j, ScoreReport& out, std::string& error) {
    try {
        if (!j.is_object() || !j.contains("schema_version")) {
            error = "not a trainopt report (no schema_version)";
            return false;
        }
        int version = j.at("schema_version").get<int>();
        if (version != kReportSchemaVersion) {
            error = "report schema version " + std::to_string(version) +
                    " is not supported (this "
                    "trainopt reads version " +
                    std::to_string(kReportSchemaVersion) + ")";
            return false;
        }
        ScoreReport r;
        r.created_at = j.at("created_at").get<std::string>();
        r.submission = j.at("submission").at("path").get<std::string>();
        r.submission_kind = j.at("submission").at("kind").get<std::string>();
        r.suite = j.at("suite").get<std::string>();
        r.sandbox = j.at("machine").at("sandbox").get<std::string>();
        r.threads = j.at("machine").at("threads").get<int>();
        r.peak_gflops = j.at("machine").at("peak_gflops").get<double>();
        // added within schema 1: optional, so earlier reports still load (without a backstop).
        // The margin is not read back: finalize_report applies this trainopt's own.
        if (j.at("machine").contains("fma_ceiling")) {
            const nlohmann::json& c = j.at("machine").at("fma_ceiling");
            r.fma_ceiling.gflops = c.at("gflops").get<double>();
            r.fma_ceiling.isa = c.at("isa").get<std::string>();
            r.fma_ceiling.threads = c.at("threads").get<int>();
            r.fma_ceiling.trials = c.at("trials").get<int>();
            r.fma_ceiling.seconds = c.at("seconds").get<double>();
            r.fma_ceiling.not_a_ceiling = c.at("not_a_ceiling").get<std::string>();
        }
        r.reps = j.at("reps").get<int>();
        r.seed = j.at("seed").get<uint64_t>();
        r.complete = j.at("complete").get<bool>();
        r.warnings = j.at("warnings").get<std::vector<std::string>>();
        r.rejected = j.at("rejected").get<std::vector<std::string>>();
        for (const auto& jt : j.at("tasks")) {
            TaskReport t;
            t.name = jt.at("name").get<std::string>();
            t.hot_spot = jt.at("hot_spot").get<std::string>();
            t.valid = jt.at("valid").get<bool>();
            t.reasons = jt.at("reasons").get<std::vector<std::string>>();
            t.warnings = jt.at("warnings").get<std::vector<std::string>>();
            t.seeds = jt.at("seeds").get<std::vector<uint64_t>>();
            t.baseline_seconds = jt.at("baseline_seconds").get<std::vector<double>>();
            t.submission_seconds = jt.at("submission_seconds").get<std::vector<double>>();
            t.steps = jt.at("steps").get<int>();
            t.step_gflop = jt.at("step_gflop").get<double>();
            t.max_loss_diff = jt.at("max_loss_diff").get<double>();
            t.max_heldout_diff = jt.at("max_heldout_diff").get<double>();
            t.max_weight_distance = jt.at("max_weight_distance").get<double>();
            // added within schema 1: optional, so earlier reports still load
            t.baseline_peak_rss_mb = jt.value("baseline_peak_rss_mb", 0.0);
            t.submission_peak_rss_mb = jt.value("submission_peak_rss_mb", 0.0);
            t.baseline_kernel_seconds =
                jt.at("baseline_kernel_seconds").get<std::map<std::string, double>>();
            t.submission_kernel_seconds =
                jt.at("submission_kernel_seconds").get<std::map<std::string, double>>();
            for (double s : t.baseline_seconds) {
                if (!(s > 0))
                    throw std::runtime_error("task " + t.name +
                                             " has a non-positive baseline time");
            }
            for (double s : t.submission_seconds) {
                if (!(s > 0))
                    throw std::runtime_error("task " + t.name +
                                             " has a non-positive submission time");
            }
            r.tasks.push_back(std::move(t));
        }
        finalize_report(r);
        out = std::move(r);
        return true;
    } catch (const std::exception& e) {
        error = std::string("malformed report: ") + e.what();
        return false;
    }
}

bool load_report(const std::string& path, ScoreReport& out, std::string& error) {
    std::ifstream f(path);
    if (!f) {
        error = "cannot read report " + path;
        return false;
    }
    nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_discarded()) {
        error = "report " + path + " is not valid JSON";
        return false;
    }
    if (!report_from_json(j, out, error)) {
        error = "report " + path + ": " + error;
        return false;
    }
    return true;
}

std::string report_to_markdown(const ScoreReport& r) {
    std::ostringstream md;
    md << "# trainopt score: " << markdown_inline(r.verdict) << "\n\n";
    md << "- submission: " << markdown_code_span(r.submission) << " ("
       << markdown_inline(r.submission_kind) << ")\n";
    md << "- suite: " << markdown_inline(r.suite) << ", " << r.reps
       << " repetitions per task, base seed " << r.seed << "\n";
    md << "- machine: " << r.threads << " threads, measured peak " << fixed(r.peak_gflops, 1)
       << " GFLOP/s, sandbox: " << markdown_inline(r.sandbox) << "\n";
    md << "- created: " << markdown_inline(r.created_at) << "\n\n";
    md << "| | speedup | 95% CI |\n|---|---:|---|\n";
    md << "| **arithmetic mean** (headline) | **" << fixed(r.summary.arithmetic, 2) << "x** | "
       << fixed(r.summary.arithmetic_ci.low, 2) << " - " << fixed(r.summary.arithmetic_ci.high, 2)
       << " |\n";
    md << "| geometric mean | " << fixed(r.summary.geometric, 2) << "x | "
       << fixed(r.summary.geometric_ci.low, 2) << " - " << fixed(r.summary.geometric_ci.high, 2)
       << " |\n";
    md << "| human expert reference | " << fixed(r.human_reference, 1) << "x | score is "
       << fixed(r.summary.arithmetic / r.human_reference, 2) << "x the reference |\n\n";
    md << "| task | hot spot | valid | baseline s (median) | submission s (median) | speedup | 95% "
          "CI "
          "| speed-of-light bound | max loss diff | held-out diff | weight dist | peak MB "
          "(base/sub) |\n";
    md << "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n";
    for (const TaskReport& t : r.tasks) {
        md << "| " << markdown_inline(t.name) << " | " << markdown_inline(t.hot_spot) << " | "
           << (t.valid ? "yes" : "**NO**") << " | " << fixed(median(t.baseline_seconds), 2) << " | "
           << fixed(median(t.submission_seconds), 3) << " | " << fixed(t.speedup, 2) << "x | "
           << fixed(t.speedup_ci.low, 2) << " - " << fixed(t.speedup_ci.high, 2) << " | "
           << speed_of_light_text(t) << " | " << std::scientific << t.max_loss_diff
           << " | " << t.max_heldout_diff << " | " << t.max_weight_distance << std::defaultfloat
           << " | " << fixed(t.baseline_peak_rss_mb, 0) << " / "
           << fixed(t.submission_peak_rss_mb, 0) << " |\n";
    }
    bool any_notes = !r.warnings.empty() || !r.rejected.empty();
    for (const TaskReport& t : r.tasks)
        any_notes = any_notes || !t.reasons.empty() || !t.warnings.empty();
    if (any_notes) {
        md << "\n## Findings\n\n";
        for (const std::string& w : r.rejected) md << md_finding("REJECTED: ", w);
        for (const std::string& w : r.warnings) md << md_finding("WARNING: ", w);
        for (const TaskReport& t : r.tasks) {
            const std::string name = markdown_inline(t.name);
            for (const std::string& reason : t.reasons)
                md << md_finding(name + ": INVALID: ", reason);
            for (const std::string& w : t.warnings) md << md_finding(name + ": warning: ", w);
        }
    }
    md << "\nTimes are wall seconds measured by the harness around each trainer process; "
          "per-kernel times inside trainers are self-reported and advisory.\n";
    return md.str();
}

namespace {

// Bar chart of speedup per task with CI whiskers and the human reference line.
std::string speedup_chart_svg(const ScoreReport& r) {
    const int width = 720, bar_h = 28, gap = 14, left = 140, right = 80, top = 30;
    const int height = top + (int)r.tasks.size() * (bar_h + gap) + 40;
    double max_v = r.human_reference * 1.25;
    for (const TaskReport& t : r.tasks) max_v = std::max(max_v, t.speedup_ci.high * 1.1);
    max_v = std::max(max_v, r.summary.arithmetic * 1.1);
    auto x_of = [&](double v) { return left + (width - left - right) * v / max_v; };
    std::ostringstream s;
    s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
      << "' font-family='sans-serif' font-size='12'>";
    s << "<text x='" << left
      << "' y='18' font-weight='bold'>Speedup per task (bars: median ratio, "
         "whiskers: 95% CI)</text>";
    int y = top;
    for (const TaskReport& t : r.tasks) {
        const std::string color = t.valid ? "#3b7dd8" : "#c0392b";
        s << "<text x='" << left - 8 << "' y='" << y + bar_h * 0.65 << "' text-anchor='end'>"
          << html_text(t.name) << "</text>";
        s << "<rect x='" << left << "' y='" << y << "' width='"
          << std::max(1.0, x_of(t.speedup) - left) << "' height='" << bar_h << "' fill='" << color
          << "'/>";
        if (t.valid) {
            s << "<line x1='" << x_of(t.speedup_ci.low) << "' x2='" << x_of(t.speedup_ci.high)
              << "' y1='" << y + bar_h / 2 << "' y2='" << y + bar_h / 2
              << "' stroke='#111' stroke-width='2'/>";
        }
        const double label_x = x_of(t.valid ? std::max(t.speedup, t.speedup_ci.high) : 0) + 6;
        s << "<text x='" << label_x << "' y='" << y + bar_h * 0.65 << "'>"
          << (t.valid ? fixed(t.speedup, 2) + "x" : std::string("INVALID")) << "</text>";
        y += bar_h + gap;
    }
    const double hx = x_of(r.human_reference);
    s << "<line x1='" << hx << "' x2='" << hx << "' y1='" << top - 6 << "' y2='" << y
      << "' stroke='#e67e22' stroke-dasharray='6,4' stroke-width='2'/>";
    s << "<text x='" << hx + 4 << "' y='" << y + 14 << "' fill='#e67e22'>human expert "
      << fixed(r.human_reference, 0) << "x</text>";
    const double mx = x_of(r.summary.arithmetic);
    s << "<line x1='" << mx << "' x2='" << mx << "' y1='" << top - 6 << "' y2='" << y
      << "' stroke='#27ae60' stroke-width='2'/>";
    s << "<text x='" << mx + 4 << "' y='" << y + 30 << "' fill='#27ae60'>mean "
      << fixed(r.summary.arithmetic, 2) << "x</text>";
    s << "</svg>";
    return s.str();
}

// Stacked bars of self-reported per-kernel seconds, baseline vs submission, per task.
std::string kernel_chart_svg(const TaskReport& t) {
    static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                   "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
    std::vector<std::string> names;
    for (const auto& [name, _] : t.baseline_kernel_seconds) names.push_back(name);
    for (const auto& [name, _] : t.submission_kernel_seconds) {
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    double base_total = 0, sub_total = 0;
    for (const auto& [_, v] : t.baseline_kernel_seconds) base_total += v;
    for (const auto& [_, v] : t.submission_kernel_seconds) sub_total += v;
    const double max_total = std::max(base_total, sub_total);
    if (max_total <= 0) return "<p>No per-kernel times were reported.</p>";
    const int width = 720, left = 110, bar_w = width - left - 20;
    std::ostringstream s;
    s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='"
      << 100 + 18 * ((names.size() + 3) / 4) << "' font-family='sans-serif' font-size='12'>";
    int row = 0;
    for (const auto* kernels : {&t.baseline_kernel_seconds, &t.submission_kernel_seconds}) {
        const int y = 10 + row * 34;
        s << "<text x='" << left - 8 << "' y='" << y + 17 << "' text-anchor='end'>"
          << (row == 0 ? "baseline" : "submission") << "</text>";
        double x = left;
        for (size_t k = 0; k < names.size(); k++) {
            auto it = kernels->find(names[k]);
            if (it == kernels->end()) continue;
            double w = bar_w * it->second / max_total;
            s << "<rect x='" << x << "' y='" << y << "' width='" << w << "' height='24' fill='"
              << colors[k % 8] << "'><title>" << html_text(names[k]) << ": " << fixed(it->second, 3)
              << " s</title></rect>";
            x += w;
        }
        double total = row == 0 ? base_total : sub_total;
        s << "<text x='" << std::min<double>(x + 4, width - 60) << "' y='" << y + 17 << "'>"
          << fixed(total, 2) << " s</text>";
        row++;
    }
    for (size_t k = 0; k < names.size(); k++) {
        const int lx = left + (int)(k % 4) * 150, ly = 82 + (int)(k / 4) * 18;
        s << "<rect x='" << lx << "' y='" << ly - 10 << "' width='12' height='12' fill='"
          << colors[k % 8] << "'/><text x='" << lx + 16 << "' y='" << ly << "'>"
          << html_text(names[k]) << "</text>";
    }
    s << "</svg>";
    return s.str();
}

}  // namespace

std::string report_to_html(const ScoreReport& r) {
    std::ostringstream h;
    h << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>trainopt score</title><style>"
         "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
         "text-align:right}td:first-child,th:first-child{text-align:left}.bad{color:#c0392b;"
         "font-weight:bold}.ok{color:#27ae60;font-weight:bold}.big{font-size:2em}</style></"
         "head><body>";
    h << "<h1>trainopt score: <span class='" << (r.verdict == "VALID" ? "ok" : "bad") << "'>"
      << html_text(r.verdict) << "</span></h1>";
    h << "<p class='big'>" << fixed(r.summary.arithmetic, 2) << "x <small>mean speedup (95% CI "
      << fixed(r.summary.arithmetic_ci.low, 2) << " - " << fixed(r.summary.arithmetic_ci.high, 2)
      << ")</small></p>";
    h << "<p>Geometric mean " << fixed(r.summary.geometric, 2) << "x (95% CI "
      << fixed(r.summary.geometric_ci.low, 2) << " - " << fixed(r.summary.geometric_ci.high, 2)
      << "). Human expert reference " << fixed(r.human_reference, 1) << "x: this score is "
      << fixed(r.summary.arithmetic / r.human_reference, 2) << "x the reference.</p>";
    h << "<p>Submission <code>" << html_text(r.submission) << "</code> ("
      << html_text(r.submission_kind) << "), suite <b>" << html_text(r.suite) << "</b>, " << r.reps
      << " repetitions, base seed " << r.seed << ", " << r.threads << " threads, measured peak "
      << fixed(r.peak_gflops, 1) << " GFLOP/s, sandbox <b>" << html_text(r.sandbox) << "</b>, "
      << html_text(r.created_at) << ".</p>";
    for (const std::string& w : r.rejected)
        h << "<div class='bad'>REJECTED: " << html_finding(w) << "</div>";
    for (const std::string& w : r.warnings)
        h << "<div class='bad'>WARNING: " << html_finding(w) << "</div>";
    h << speedup_chart_svg(r);
    h << "<table><tr><th>task</th><th>hot spot</th><th>valid</th><th>baseline s</th><th>submission "
         "s"
         "</th><th>speedup</th><th>95% CI</th><th>speed-of-light bound</th><th>max loss diff</th>"
         "<th>held-out diff</th><th>weight dist</th><th>peak MB (base/sub)</th></tr>";
    for (const TaskReport& t : r.tasks) {
        h << "<tr><td>" << html_text(t.name) << "</td><td>" << html_text(t.hot_spot)
          << "</td><td class='" << (t.valid ? "ok'>yes" : "bad'>NO") << "</td><td>"
          << fixed(median(t.baseline_seconds), 2) << "</td><td>"
          << fixed(median(t.submission_seconds), 3) << "</td><td>" << fixed(t.speedup, 2)
          << "x</td><td>" << fixed(t.speedup_ci.low, 2) << " - " << fixed(t.speedup_ci.high, 2)
          << "</td><td>" << speed_of_light_text(t) << "</td><td>" << t.max_loss_diff
          << "</td><td>" << t.max_heldout_diff << "</td><td>" << t.max_weight_distance
          << "</td></tr>";
    }
    h << "</table>";
    for (const TaskReport& t : r.tasks) {
        if (t.reasons.empty() && t.warnings.empty()) continue;
        h << "<h3>" << html_text(t.name) << "</h3><ul>";
        for (const std::string& x : t.reasons)
            h << "<li class='bad'>INVALID: " << html_finding(x) << "</li>";
        for (const std::string& x : t.warnings) h << "<li>warning: " << html_finding(x) << "</li>";
        h << "</ul>";
    }
    h << "<h2>Time per kernel (self-reported by the trainers, advisory)</h2>";
    for (const TaskReport& t : r.tasks) {
        h << "<h3>" << html_text(t.name) << "</h3>" << kernel_chart_svg(t);
    }
    h << "<p><small>Wall times are measured by the harness around each sandboxed trainer process "
         "(CLOCK_MONOTONIC); nothing a submission prints about itself is used for the score."
         "</small></p></body></html>\n";
    return h.str();
}

bool write_file_atomic(const std::string& path, const std::string& content, std::string& error) {
    fs::path target(path);
    std::error_code ec;
    if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
    // A fresh temporary name created exclusively (mkstemp): nothing planted in the directory,
    // a link least of all, is ever opened or truncated.
    std::string tmp = path + ".tmp.XXXXXX";
    int fd = mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0644) != 0) {
        if (fd >= 0) close(fd);
        error = "cannot write a temporary file next to " + path;
        return false;
    }
    size_t written = 0;
    while (written < content.size()) {
        ssize_t n = write(fd, content.data() + written, content.size() - written);
        if (n <= 0) {
            close(fd);
            unlink(tmp.c_str());
            error = "short write to " + tmp;
            return false;
        }
        written += n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
        unlink(tmp.c_str());
        error = "cannot replace " + path;
        return false;
    }
    return true;
}

}  // namespace trainopt
