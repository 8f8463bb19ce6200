// The HTML rendering of a report: one self-contained page (inline CSS and SVG; no scripts, no
// links, nothing loaded from elsewhere) that a person reads at a glance: the verdict and the
// headline numbers on top, then what went wrong, the speedup chart, the task table, the final
// weights per tensor (after a failure, and in a verify report) and the per-kernel times. Every
// string in a report may be untrusted (a submission's log tail or file name, kernel names from its
// meta.json, anything in a JSON report loaded back), so every one goes through html_text()
// (scoring/untrusted_text.h), never raw.
#include <cstdio>
#include <sstream>

#include "scoring/report.h"
#include "scoring/report_format.h"
#include "scoring/report_svg.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

// Compact, one line per number: the page never wraps a number (white-space:nowrap on .num).
constexpr const char* kStyle =
    "body{font:14px/1.4 system-ui,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;"
    "max-width:1000px;margin:16px auto;padding:0 16px}"
    "h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:18px 0 6px}"
    "h2 small,.muted{color:#666;font-weight:normal}"
    ".verdict{display:inline-block;padding:0 10px;border-radius:4px;color:#fff}"
    ".verdict-valid{background:#1e8449}.verdict-bad{background:#c0392b}"
    ".verdict-incomplete{background:#b9770e}"
    ".meta{color:#555;font-size:13px;margin:0 0 10px}"
    ".meta span{white-space:nowrap}"
    ".stats{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}"
    ".stat{flex:1 1 0;min-width:180px;border:1px solid #ddd;border-radius:6px;padding:4px 12px}"
    ".stat .value{font-size:22px;font-weight:600;white-space:nowrap}"
    ".stat .label{color:#555;font-size:12px;white-space:nowrap}"
    ".findings{margin:6px 0;padding-left:20px}.findings li{margin:2px 0;overflow-wrap:anywhere}"
    ".rejected,.invalid{color:#a93226}.warning{color:#9a6700}"
    "pre{color:#222;background:#f5f5f5;border:1px solid #e3e3e3;padding:4px 8px;margin:4px 0;"
    "font-size:12px;max-height:14em;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere}"
    ".legend{font-size:12px;color:#444;margin:0 0 4px;padding:0;list-style:none}"
    ".legend li{display:inline-block;margin-right:16px;white-space:nowrap}"
    ".key{display:inline-block;width:14px;height:10px;margin-right:5px;vertical-align:0}"
    ".key-bar{background:#3b7dd8}.key-ci{height:0;border-top:2px solid #111}"
    ".key-bound{width:3px;height:12px;background:#222}"
    ".key-human{height:0;border-top:2px dashed #e67e22}.key-mean{height:0;border-top:2px solid "
    "#1e8449}"
    ".key-invalid{background:repeating-linear-gradient(45deg,#c0392b 0 2px,#f7dcd8 2px 5px)}"
    "svg.chart{max-width:100%;height:auto;display:block}"
    "table{border-collapse:collapse;width:100%;font-size:13px;margin:4px 0}"
    "th,td{padding:3px 5px;border-bottom:1px solid #e3e3e3;text-align:right}"
    "th{background:#f3f3f3;font-weight:600;vertical-align:bottom;white-space:nowrap}"
    "td.num{white-space:nowrap;font-variant-numeric:tabular-nums}"
    "td.text,th.text{text-align:left}"
    "td.text{min-width:5em;max-width:16em;overflow-wrap:break-word}"
    "td.text:nth-child(2){min-width:9em}"                 // the hot spot: a phrase, give it room
    "table.tensors td.text:nth-child(4){max-width:none}"  // the kernels: a phrase, one line
    "td.ok{color:#1e8449;font-weight:600}td.bad{color:#c0392b;font-weight:600}"
    "s.measured{color:#c0392b}"
    ".kernel-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));"
    "gap:4px 24px}"
    "figure{margin:0}figcaption{font-weight:600;font-size:13px;overflow-wrap:anywhere}"
    ".note{color:#666;font-size:12px;margin:2px 0}"
    "footer{color:#666;font-size:12px;margin-top:16px}";

// The verdict's badge colour: green only for VALID.
const char* verdict_class(Verdict verdict) {
    switch (verdict) {
        case Verdict::valid:
            return "verdict-valid";
        case Verdict::incomplete:
            return "verdict-incomplete";
        case Verdict::invalid:
        case Verdict::rejected:
            break;
    }
    return "verdict-bad";
}

// A message as a list item body: its first line inline, the rest (a log or compiler output
// tail) preformatted in a scrolling box.
std::string html_finding(const std::string& message) {
    const std::string safe = terminal_safe(message);
    const size_t eol = safe.find('\n');
    std::string html = html_text(safe.substr(0, eol));
    if (eol != std::string::npos && has_text_from(safe, eol + 1))
        html += "<pre>" + html_text(safe.substr(eol + 1)) + "</pre>";
    return html;
}

// A headline number with what it is and, below, its detail (a CI).
std::string stat_box(const std::string& value, const std::string& label,
                     const std::string& detail) {
    return "<div class='stat'><div class='value'>" + value + "</div><div class='label'>" + label +
           "<br>" + detail + "</div></div>";
}

// The verdict, the headline numbers and how the score was measured.
std::string header_html(const ScoreReport& r) {
    std::ostringstream h;
    h << "<header><h1>trainopt " << command_name(r) << " <span class='verdict "
      << verdict_class(r.verdict) << "'>" << to_string(r.verdict) << "</span></h1>";
    h << "<p class='meta'><span>submission <code>" << html_text(r.submission) << "</code> ("
      << html_text(r.submission_kind) << ")</span>";
    if (r.command != "baseline")
        h << " &#183; <span>" << html_text(build_text(r.build)) << "</span>";
    h << " &#183; <span>suite " << html_text(r.suite) << "</span> &#183; <span>" << r.reps
      << " repetitions, base seed " << r.seed << "</span> &#183; <span>" << r.threads
      << " threads</span> &#183; <span>";
    if (r.peak_gflops > 0) {
        h << "sgemm peak " << format_fixed(r.peak_gflops, 1) << " GFLOP/s";
    } else {
        h << "sgemm peak not measured";
    }
    h << "</span> &#183; <span>";
    if (r.fma_ceiling.gflops > 0) {
        h << "FMA ceiling " << format_fixed(r.fma_ceiling.gflops, 0) << " GFLOP/s ("
          << html_text(r.fma_ceiling.isa) << ")";
    } else {
        h << "FMA ceiling not measured";
    }
    h << "</span> &#183; <span>sandbox " << html_text(r.sandbox) << "</span> &#183; <span>"
      << html_text(r.created_at) << "</span></p>";
    if (!r.rejected.empty()) {
        h << "<p class='rejected'><strong>No score: the submission was refused before any "
             "run.</strong></p></header>";
        return h.str();
    }
    if (any_baseline_cached(r)) {
        h << "<p class='rejected'>" << html_text(kBaselineCachedNote) << "</p></header>";
        return h.str();
    }
    int valid = 0;
    for (const TaskReport& t : r.tasks) valid += t.valid ? 1 : 0;
    const SuiteSummary& s = r.summary;
    h << "<div class='stats'>"
      << stat_box(format_fixed(s.arithmetic, 2) + "x", "mean speedup (the score)",
                  "95% CI " + format_fixed(s.arithmetic_ci.low, 2) + "&#8211;" +
                      format_fixed(s.arithmetic_ci.high, 2))
      << stat_box(format_fixed(s.geometric, 2) + "x", "geometric mean",
                  "95% CI " + format_fixed(s.geometric_ci.low, 2) + "&#8211;" +
                      format_fixed(s.geometric_ci.high, 2))
      << stat_box(format_fixed(s.arithmetic / r.human_reference, 2) + "x",
                  "the human expert reference",
                  "a human expert reaches " + format_fixed(r.human_reference, 1) + "x")
      << stat_box(std::to_string(valid) + " / " + std::to_string(r.tasks.size()), "tasks valid",
                  "an INVALID task counts as 0")
      << "</div></header>";
    return h.str();
}

// Everything that made the verdict or deserves a look: refusals, warnings, and per task why it
// is INVALID. Empty when there is nothing to say.
std::string findings_html(const ScoreReport& r) {
    std::ostringstream h;
    for (const std::string& w : r.rejected)
        h << "<li class='rejected'><strong>REJECTED:</strong> " << html_finding(w) << "</li>";
    for (const std::string& w : r.warnings)
        h << "<li class='warning'><strong>WARNING:</strong> " << html_finding(w) << "</li>";
    for (const TaskReport& t : r.tasks) {
        const std::string name = html_text(t.name);
        for (const std::string& x : t.reasons)
            h << "<li class='invalid'><strong>" << name << ": INVALID:</strong> " << html_finding(x)
              << "</li>";
        for (const std::string& x : t.warnings)
            h << "<li class='warning'><strong>" << name << ": warning:</strong> " << html_finding(x)
              << "</li>";
    }
    if (h.str().empty()) return "";
    return "<section><h2>Findings</h2><ul class='findings'>" + h.str() + "</ul></section>";
}

// The speedup chart with a legend of the marks it uses.
std::string speedup_section_html(const ScoreReport& r) {
    const std::string chart = speedup_chart_svg(r);
    if (chart.empty()) return "";
    bool any_bound = false, any_invalid = false;
    for (const TaskReport& t : r.tasks) {
        any_bound = any_bound || t.speed_of_light_speedup > 0;
        any_invalid = any_invalid || !t.valid;
    }
    std::ostringstream h;
    h << "<section><h2>Speedup per task</h2><ul class='legend'>"
      << "<li><span class='key key-bar'></span>median speedup (ratio of medians)</li>"
      << "<li><span class='key key-ci'></span>95% CI</li>";
    if (any_bound)
        h << "<li><span class='key key-bound'></span>speed-of-light bound (all FLOPs at the "
             "sgemm peak)</li>";
    h << "<li><span class='key key-human'></span>human expert "
      << format_fixed(r.human_reference, 0) << "x</li>";
    if (r.summary.arithmetic > 0)
        h << "<li><span class='key key-mean'></span>mean of the tasks</li>";
    if (any_invalid)
        h << "<li><span class='key key-invalid'></span>INVALID: measured, counts as 0</li>";
    h << "</ul>" << chart << "</section>";
    return h.str();
}

// The two suites of a --with-generated score side by side, and the generalization ratio.
std::string two_suites_html(const ScoreReport& r) {
    if (!r.suites) return "";
    const TwoSuiteReport& two = *r.suites;
    size_t first = 0, second = 0;
    for (const TaskReport& t : r.tasks) (t.suite == two.first ? first : second)++;
    auto row = [](const std::string& label, size_t tasks, const SuiteSummary& s) {
        return "<tr><td class='text'>" + label + "</td><td class='num'>" + std::to_string(tasks) +
               "</td><td class='num'>" + format_fixed(s.arithmetic, 2) + "x</td><td class='num'>" +
               format_fixed(s.arithmetic_ci.low, 2) + "&#8211;" +
               format_fixed(s.arithmetic_ci.high, 2) + "</td><td class='num'>" +
               format_fixed(s.geometric, 2) + "x</td></tr>";
    };
    std::ostringstream h;
    h << "<section><h2>Generalization</h2><table><tr><th class='text'>suite</th><th>tasks</th>"
         "<th>mean speedup</th><th>95% CI</th><th>geometric mean</th></tr>"
      << row(html_text(two.first) + " (the agents' suite)", first, two.summary.first)
      << row(html_text(two.second) + " (drawn at scoring time)", second, two.summary.second)
      << "<tr><td class='text'><strong>generalization</strong> (second / first)</td><td></td>"
         "<td class='num'><strong>"
      << format_fixed(two.summary.generalization, 2) << "</strong></td><td class='num'>"
      << format_fixed(two.summary.generalization_ci.low, 2) << "&#8211;"
      << format_fixed(two.summary.generalization_ci.high, 2)
      << "</td><td></td></tr></table><p class='note'>The score is the mean of the two suites' "
         "mean speedups, each suite weighing half. A generalization of 1: as fast, relative to "
         "the baseline, on shapes nobody saw as on the suite the submission was tuned on.</p>"
         "</section>";
    return h.str();
}

// The human line, the shipped references and the submission, the fastest first.
std::string standing_html(const ScoreReport& r) {
    const std::vector<StandingRow> rows = standing_rows(r);
    if (rows.empty()) return "";
    std::ostringstream h;
    h << "<section><h2>Where this stands</h2><table class='standing'><tr><th "
         "class='text'></th><th>mean speedup</th><th class='text'></th></tr>";
    for (const StandingRow& row : rows) {
        const std::string label = html_text(row.label);
        h << "<tr><td class='text'>"
          << (row.is_submission ? "<strong>" + label + "</strong>" : label)
          << "</td><td class='num'>" << format_fixed(row.speedup, 2) << "x</td><td class='text'>"
          << html_text(row.detail) << "</td></tr>";
    }
    h << "</table><p class='note'>" << html_text(kStandingExplanation) << "</p></section>";
    return h.str();
}

// One row per task; every header has its cell in every row.
std::string task_table_html(const ScoreReport& r) {
    std::ostringstream h;
    // Short headers, so the text columns keep their room; the note below says what they mean.
    h << "<section><h2>Tasks</h2><table><tr><th class='text'>task</th><th class='text'>hot "
         "spot</th><th>valid</th><th>baseline s</th><th>submission s</th><th>speedup</th>"
         "<th>95% CI</th><th>speed of<br>light</th><th>loss<br>diff</th><th>held-out<br>diff</th>"
         "<th>weight<br>dist</th><th>peak MB<br>base / sub</th></tr>";
    for (const TaskReport& t : r.tasks) {
        h << "<tr><td class='text'>"
          << html_text(t.suite.empty() ? t.name : t.suite + " / " + t.name)
          << "</td><td class='text'>" << html_text(t.hot_spot) << "</td>"
          << (t.valid ? "<td class='ok'>yes</td>" : "<td class='bad'>INVALID</td>")
          << "<td class='num'>" << baseline_seconds_text(t) << "</td><td class='num'>"
          << format_fixed(median(t.submission_seconds), 3) << "</td><td class='num'>";
        if (t.baseline_cached) {
            h << "&#8211;</td><td class='num'>&#8211;";
        } else if (t.valid) {
            h << format_fixed(t.speedup, 2) << "x</td><td class='num'>"
              << format_fixed(t.speedup_ci.low, 2) << "&#8211;"
              << format_fixed(t.speedup_ci.high, 2);
        } else {
            const double measured = measured_speedup(t);
            if (measured > 0)
                h << "<s class='measured' title='measured; an INVALID task counts as 0'>"
                  << format_fixed(measured, 2) << "x</s>";
            else
                h << "&#8211;";
            h << "</td><td class='num'>&#8211;";
        }
        h << "</td><td class='num'>" << speed_of_light_text(t) << "</td><td class='num'>"
          << format_scientific(t.max_loss_diff) << "</td><td class='num'>"
          << format_scientific(t.max_heldout_diff) << "</td><td class='num'>"
          << format_scientific(t.max_weight_distance) << "</td><td class='num'>"
          << format_fixed(t.baseline_peak_rss_mb, 0) << " / "
          << format_fixed(t.submission_peak_rss_mb, 0) << "</td></tr>";
    }
    h << "</table><p class='note'>Times: median wall seconds over the repetitions. Speed of "
         "light: the speedup if all of the task's FLOPs ran at the sgemm peak. Diffs: the largest "
         "deviation from the reference over the repetitions (loss per step, held-out loss, "
         "relative weight distance). Peak MB: resident memory.</p></section>";
    return h.str();
}

// The trained models' quality, baseline next to submission; nothing for reports without it.
std::string quality_table_html(const ScoreReport& r) {
    if (!has_quality(r)) return "";
    std::ostringstream h;
    h << "<section><h2>Model quality</h2><table><tr><th class='text'>task</th><th>final "
         "training loss<br>baseline</th><th>final training loss<br>submission</th><th>held-out "
         "loss<br>baseline</th><th>held-out loss<br>submission</th></tr>";
    for (const TaskReport& t : r.tasks) {
        h << "<tr><td class='text'>" << html_text(t.name) << "</td><td class='num'>"
          << loss_text(t.baseline_final_loss) << "</td><td class='num'>"
          << loss_text(t.submission_final_loss) << "</td><td class='num'>"
          << loss_text(t.baseline_heldout_loss) << "</td><td class='num'>"
          << loss_text(t.submission_heldout_loss) << "</td></tr>";
    }
    h << "</table><p class='note'>Losses in nats, medians over the repetitions. Final training "
         "loss: the mean of a run's last min(10, steps) per-step losses. Held-out loss: "
         "recomputed by the harness from the final checkpoint with the reference kernels."
         "</p></section>";
    return h.str();
}

// The per-tensor distances of the final weights, for the tasks that show them (shows_tensors):
// which tensor went farthest from the reference and the backward kernels behind its gradient.
std::string tensors_html(const ScoreReport& r) {
    std::ostringstream h;
    for (const TaskReport& t : r.tasks) {
        if (!shows_tensors(r, t)) continue;
        h << "<figure><figcaption>" << html_text(t.name) << "</figcaption><table class='tensors'>"
          << "<tr><th class='text'>tensor</th><th>layer</th><th>relative distance</th>"
             "<th class='text'>gradient from</th></tr>";
        for (const TensorReport& x : t.tensors) {
            h << "<tr><td class='text'>" << html_text(x.tensor) << "</td><td class='num'>"
              << layer_text(x.layer) << "</td><td class='num'>" << format_scientific(x.rel)
              << "</td><td class='text'>" << html_text(x.kernel) << "</td></tr>";
        }
        h << "</table></figure>";
    }
    if (h.str().empty()) return "";
    return "<section><h2>Final weights per tensor</h2><p class='note'>" +
           html_text(kTensorTableExplanation) + "</p>" + h.str() + "</section>";
}

// The advisory per-kernel times: one colour legend, then a small chart per task side by side.
std::string kernel_section_html(const ScoreReport& r) {
    const std::vector<std::string> names = kernel_names(r);
    std::ostringstream h;
    h << "<section><h2>Time per kernel <small>self-reported by the trainers, advisory</small>"
         "</h2>";
    if (names.empty()) {
        h << "<p class='muted'>No per-kernel times were reported.</p></section>";
        return h.str();
    }
    h << "<ul class='legend'>";
    for (size_t k = 0; k < names.size(); k++) {
        h << "<li title='" << html_text(names[k])
          << "'><span class='key' style='background:" << kernel_color(k) << "'></span>"
          << html_text(clipped_line(names[k], 40)) << "</li>";
    }
    h << "</ul><div class='kernel-grid'>";
    for (const TaskReport& t : r.tasks) {
        const std::string chart = kernel_chart_svg(t, names);
        h << "<figure><figcaption>" << html_text(t.name) << "</figcaption>"
          << (chart.empty() ? "<p class='muted'>No per-kernel times were reported.</p>" : chart)
          << "</figure>";
    }
    h << "</div></section>";
    return h.str();
}

}  // namespace

std::string report_to_html(const ScoreReport& r) {
    std::ostringstream h;
    h << "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
         "<meta name='viewport' content='width=device-width, initial-scale=1'>"
         "<title>trainopt "
      << command_name(r) << ": " << to_string(r.verdict) << "</title><style>" << kStyle
      << "</style></head><body>";
    h << header_html(r) << findings_html(r);
    if (!r.tasks.empty()) {
        h << two_suites_html(r) << standing_html(r) << speedup_section_html(r) << task_table_html(r)
          << quality_table_html(r) << tensors_html(r) << kernel_section_html(r);
    } else if (r.rejected.empty()) {
        h << "<p class='muted'>No task has finished a repetition yet.</p>";
    }
    h << "<footer>Wall times are measured by the harness around each sandboxed trainer process "
         "(CLOCK_MONOTONIC); nothing a submission prints about itself is used for the score. A "
         "task's speedup is the ratio of the median times; the headline is the arithmetic mean "
         "over the tasks.";
    if (const std::string phases = phases_text(r); !phases.empty())
        h << " " << html_text(phases) << ".";
    h << "</footer></body></html>\n";
    return h.str();
}

}  // namespace trainopt
