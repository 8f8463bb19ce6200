#include "scoring/history_render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

bool finite_positive(double v) {
    return std::isfinite(v) && v > 0;
}

// A number with `digits` decimals, or "n/a" for a value the database does not hold.
std::string number_text(double v, int digits) {
    return std::isfinite(v) ? format_fixed(v, digits) : "n/a";
}

std::string change_text(double relative) {
    return (relative >= 0 ? "+" : "") + format_fixed(100 * relative, 1) + "%";
}

std::string short_hash(const std::string& hash) {
    return hash.size() > 12 ? hash.substr(0, 12) : hash;
}

// "2026-12-02" of "2026-12-02T03:00:00Z".
std::string date_of(const std::string& created_at) {
    return clipped_line(created_at.substr(0, 10), 10);
}

// The change point that starts at points[index], or nullptr.
const ChangePoint* change_at(const HistorySeries& s, size_t index) {
    for (const ChangePoint& cp : s.change_points) {
        if (cp.index == index) return &cp;
    }
    return nullptr;
}

std::string change_summary(const ChangePoint& cp) {
    return number_text(cp.before, 2) + "x -> " + number_text(cp.after, 2) + "x (" +
           change_text(cp.relative_change) + ", p = " + format_fixed(cp.p_value, 3) + ")";
}

std::string method_text(const ChangePointOptions& o) {
    return "E-divisive means on log speedup, permutation test at p <= " +
           format_fixed(o.significance, 2) + " (" + std::to_string(o.permutations) +
           " permutations), at least " + format_fixed(100 * o.min_relative_change, 0) +
           "% change and " + std::to_string(o.min_segment) +
           " valid runs on either side; only within a series (same submission, task, task spec "
           "hash and machine)";
}

std::string filter_text(const HistoryFilter& f) {
    std::string text;
    if (!f.suite.empty()) text += " suite " + f.suite + ";";
    if (!f.task.empty()) text += " task " + f.task + ";";
    if (!f.submission.empty()) text += " submission " + f.submission + ";";
    return text.empty() ? "none" : text.substr(1, text.size() - 2);
}

size_t change_count(const HistoryView& view) {
    size_t n = 0;
    for (const HistorySeries& s : view.series) n += s.change_points.size();
    return n;
}

// ---- the chart ----

std::string px(double v) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.1f", v);
    return buf;
}

// Tick values 1-2-5 x 10^k covering [low, high] with at most about 6 ticks.
std::vector<double> linear_ticks(double low, double high) {
    const double range = high - low;
    const double raw = range / 5;
    const double decade = std::pow(10, std::floor(std::log10(raw)));
    double step = decade;
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
        step = m * decade;
        if (step >= raw) break;
    }
    std::vector<double> ticks;
    for (double t = std::ceil(low / step) * step; t <= high + step * 1e-9 && ticks.size() < 20;
         t += step)
        ticks.push_back(t);
    return ticks;
}

constexpr const char* kPointColor = "#3b7dd8";
constexpr const char* kInvalidColor = "#c0392b";
constexpr const char* kMeanColor = "#1e8449";
constexpr const char* kChangeColor = "#b9770e";

}  // namespace

std::string history_chart_svg(const HistorySeries& s) {
    const int width = 1000, height = 260, left = 70, right = 20, top = 22, bottom = 44;
    const double plot_w = width - left - right, plot_h = height - top - bottom;
    const size_t n = s.points.size();
    // the values drawn: finite positive speedups and CI ends, capped so that a damaged database
    // cannot make the axis absurd
    double lo = INFINITY, hi = -INFINITY;
    for (const HistoryPoint& p : s.points) {
        if (!p.valid) continue;
        for (double v : {p.speedup, p.speedup_ci.low, p.speedup_ci.high}) {
            if (!finite_positive(v)) continue;
            v = std::clamp(v, 1e-3, 1e6);
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    }
    std::ostringstream svg;
    svg << "<svg class='chart' viewBox='0 0 " << width << " " << height << "' width='" << width
        << "' height='" << height
        << "' role='img' font-family='system-ui,Helvetica,Arial,sans-serif' font-size='12'>";
    svg << "<title>" << html_text("speedup of " + s.task + " per run") << "</title>";
    if (!(lo <= hi)) {
        svg << "<text x='" << left << "' y='" << height / 2
            << "'>no valid run to draw</text></svg>";
        return svg.str();
    }
    if (hi - lo < 1e-9 * hi) {
        lo *= 0.95;
        hi *= 1.05;
    }
    const double pad = (hi - lo) * 0.08;
    lo = std::max(0.0, lo - pad);
    hi += pad;
    const std::vector<double> ticks = linear_ticks(lo, hi);
    auto y_of = [&](double v) {
        return top + plot_h * (1 - (std::clamp(v, lo, hi) - lo) / (hi - lo));
    };
    auto x_of = [&](size_t i) {
        return n <= 1 ? left + plot_w / 2 : left + plot_w * (double)i / (double)(n - 1);
    };
    // grid and y labels
    for (double t : ticks) {
        svg << "<line x1='" << left << "' x2='" << width - right << "' y1='" << px(y_of(t))
            << "' y2='" << px(y_of(t)) << "' stroke='#e3e3e3'/>";
        svg << "<text x='" << left - 6 << "' y='" << px(y_of(t) + 4) << "' text-anchor='end'>"
            << html_text(number_text(t, t < 10 ? 2 : 1)) << "x</text>";
    }
    svg << "<line x1='" << left << "' x2='" << width - right << "' y1='" << top + plot_h << "' y2='"
        << top + plot_h << "' stroke='#888'/>";
    svg << "<text x='14' y='" << px(top + plot_h / 2) << "' transform='rotate(-90 14 "
        << px(top + plot_h / 2) << ")' text-anchor='middle'>speedup</text>";
    // segment means: the geometric mean of the valid points between change points
    std::vector<size_t> bounds = {0};
    for (const ChangePoint& cp : s.change_points) bounds.push_back(cp.index);
    bounds.push_back(n);
    for (size_t b = 0; b + 1 < bounds.size(); b++) {
        double sum = 0;
        int count = 0;
        for (size_t i = bounds[b]; i < bounds[b + 1]; i++) {
            if (!s.points[i].valid) continue;
            sum += std::log(s.points[i].speedup);
            count++;
        }
        if (count == 0) continue;
        const double y = y_of(std::exp(sum / count));
        const double x1 = b == 0 ? x_of(0) : (x_of(bounds[b] - 1) + x_of(bounds[b])) / 2;
        const double x2 = b + 2 == bounds.size()
                              ? x_of(n - 1)
                              : (x_of(bounds[b + 1] - 1) + x_of(bounds[b + 1])) / 2;
        svg << "<line x1='" << px(x1) << "' x2='" << px(x2) << "' y1='" << px(y) << "' y2='"
            << px(y) << "' stroke='" << kMeanColor << "' stroke-width='2' opacity='0.7'/>";
    }
    // change points
    for (const ChangePoint& cp : s.change_points) {
        const double x = cp.index == 0 ? x_of(0) : (x_of(cp.index - 1) + x_of(cp.index)) / 2;
        svg << "<line x1='" << px(x) << "' x2='" << px(x) << "' y1='" << top << "' y2='"
            << top + plot_h << "' stroke='" << kChangeColor
            << "' stroke-width='2' stroke-dasharray='5 3'><title>"
            << html_text("change point: " + change_summary(cp)) << "</title></line>";
        svg << "<text x='" << px(x + 4) << "' y='" << top - 6 << "' fill='" << kChangeColor
            << "' font-weight='600'>" << html_text(change_text(cp.relative_change)) << "</text>";
    }
    // the runs
    for (size_t i = 0; i < n; i++) {
        const HistoryPoint& p = s.points[i];
        const double x = x_of(i);
        const std::string tip = date_of(p.created_at) + " " + clipped_line(p.commit, 40) + ": " +
                                (p.valid ? number_text(p.speedup, 2) + "x" : "INVALID");
        if (!p.valid) {
            svg << "<text x='" << px(x) << "' y='" << px(top + plot_h - 2)
                << "' text-anchor='middle' fill='" << kInvalidColor
                << "' font-weight='700'>x<title>" << html_text(tip) << "</title></text>";
            continue;
        }
        const Interval& ci = p.speedup_ci;
        if (finite_positive(ci.low) && finite_positive(ci.high) && ci.low <= ci.high)
            svg << "<line x1='" << px(x) << "' x2='" << px(x) << "' y1='" << px(y_of(ci.low))
                << "' y2='" << px(y_of(ci.high)) << "' stroke='#555'/>";
        svg << "<circle cx='" << px(x) << "' cy='" << px(y_of(p.speedup)) << "' r='3.5' fill='"
            << kPointColor << "'><title>" << html_text(tip) << "</title></circle>";
    }
    // x labels: the first and last run's dates
    if (n > 0) {
        svg << "<text x='" << px(x_of(0)) << "' y='" << height - bottom + 18
            << "' text-anchor='start'>" << html_text(date_of(s.points.front().created_at))
            << "</text>";
        if (n > 1)
            svg << "<text x='" << px(x_of(n - 1)) << "' y='" << height - bottom + 18
                << "' text-anchor='end'>" << html_text(date_of(s.points.back().created_at))
                << "</text>";
    }
    svg << "<text x='" << px(left + plot_w / 2) << "' y='" << height - 8
        << "' text-anchor='middle' fill='#555'>" << n << " runs, oldest left</text>";
    svg << "</svg>";
    return svg.str();
}

std::string history_to_markdown(const HistoryView& view) {
    std::ostringstream md;
    md << "# trainopt history: " << view.runs << " runs, " << view.series.size() << " series, "
       << change_count(view) << " change points\n\n";
    md << "- database: " << markdown_code_span(view.database) << "\n";
    md << "- filter: " << markdown_inline(filter_text(view.filter)) << "\n";
    md << "- change points: " << markdown_inline(method_text(view.options)) << "\n";
    for (const HistorySeries& s : view.series) {
        md << "\n## task " << markdown_inline(s.task) << ", submission "
           << markdown_inline(s.submission) << "\n\n";
        md << "- machine: " << markdown_inline(s.machine) << "; task spec hash "
           << markdown_code_span(short_hash(s.spec_hash)) << "\n";
        if (!s.not_analysed.empty()) {
            md << "- change points: not looked for: " << markdown_inline(s.not_analysed) << "\n";
        } else if (s.change_points.empty()) {
            md << "- change points: none\n";
        }
        for (const ChangePoint& cp : s.change_points) {
            const HistoryPoint& p = s.points[cp.index];
            md << "- **change point** at run " << cp.index + 1 << " ("
               << markdown_inline(date_of(p.created_at)) << ", commit "
               << markdown_inline(clipped_line(p.commit, 40))
               << "): " << markdown_inline(change_summary(cp)) << "\n";
        }
        md << "\n| # | date | commit | speedup | 95% CI | baseline s | submission s | change |\n"
              "|---:|---|---|---:|---|---:|---:|---|\n";
        for (size_t i = 0; i < s.points.size(); i++) {
            const HistoryPoint& p = s.points[i];
            md << "| " << i + 1 << " | " << markdown_inline(date_of(p.created_at)) << " | "
               << markdown_inline(clipped_line(p.commit, 40)) << " | "
               << (p.valid ? number_text(p.speedup, 2) + "x" : std::string("INVALID")) << " | "
               << number_text(p.speedup_ci.low, 2) << " - " << number_text(p.speedup_ci.high, 2)
               << " | " << number_text(p.baseline_median_seconds, 3) << " | "
               << number_text(p.submission_median_seconds, 3) << " | ";
            if (const ChangePoint* cp = change_at(s, i))
                md << "**" << markdown_inline(change_text(cp->relative_change)) << "**";
            md << " |\n";
        }
    }
    return md.str();
}

std::string history_to_html(const HistoryView& view) {
    std::ostringstream h;
    h << "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>trainopt history"
         "</title><style>"
         "body{font:14px/1.4 system-ui,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;"
         "max-width:1000px;margin:16px auto;padding:0 16px}"
         "h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:22px 0 4px;"
         "overflow-wrap:anywhere}.meta{color:#555;font-size:13px;margin:2px 0;"
         "overflow-wrap:anywhere}.change{color:#b9770e;font-weight:600}"
         "svg.chart{max-width:100%;height:auto;display:block}"
         "table{border-collapse:collapse;width:100%;font-size:13px;margin:4px 0}"
         "th,td{padding:2px 5px;border-bottom:1px solid #e3e3e3;text-align:right}"
         "th{background:#f3f3f3}td.text,th.text{text-align:left;overflow-wrap:anywhere}"
         "td.bad{color:#c0392b;font-weight:600}details{margin:4px 0}"
         "</style></head><body>";
    h << "<h1>trainopt history: " << view.runs << " runs, " << view.series.size() << " series, "
      << change_count(view) << " change points</h1>";
    h << "<p class='meta'>database <code>" << html_text(view.database) << "</code> &#183; filter "
      << html_text(filter_text(view.filter)) << "</p>";
    h << "<p class='meta'>change points: " << html_text(method_text(view.options)) << "</p>";
    h << "<p class='meta'>charts: a run's speedup (blue dot) with its 95% CI (whisker), oldest "
         "left; the geometric mean of each segment between change points (green line); a change "
         "point (dashed line, labelled with its change); an INVALID run (red x on the axis)</p>";
    for (const HistorySeries& s : view.series) {
        h << "<section><h2>task " << html_text(s.task) << ", submission " << html_text(s.submission)
          << "</h2>";
        h << "<p class='meta'>machine " << html_text(s.machine) << " &#183; task spec hash <code>"
          << html_text(short_hash(s.spec_hash)) << "</code></p>";
        if (!s.not_analysed.empty())
            h << "<p class='meta'>change points not looked for: " << html_text(s.not_analysed)
              << "</p>";
        for (const ChangePoint& cp : s.change_points) {
            const HistoryPoint& p = s.points[cp.index];
            h << "<p class='change'>change point at run " << cp.index + 1 << " ("
              << html_text(date_of(p.created_at)) << ", commit "
              << html_text(clipped_line(p.commit, 40)) << "): " << html_text(change_summary(cp))
              << "</p>";
        }
        h << history_chart_svg(s);
        h << "<details><summary>" << s.points.size()
          << " runs</summary><table><tr>"
             "<th>#</th><th class='text'>date</th><th class='text'>commit</th><th>speedup</th>"
             "<th>95% CI</th><th>baseline s</th><th>submission s</th><th>change</th></tr>";
        for (size_t i = 0; i < s.points.size(); i++) {
            const HistoryPoint& p = s.points[i];
            h << "<tr><td>" << i + 1 << "</td><td class='text'>" << html_text(date_of(p.created_at))
              << "</td><td class='text'>" << html_text(clipped_line(p.commit, 40)) << "</td>"
              << (p.valid ? "<td>" + html_text(number_text(p.speedup, 2)) + "x</td>"
                          : std::string("<td class='bad'>INVALID</td>"))
              << "<td>" << number_text(p.speedup_ci.low, 2) << " &#8211; "
              << number_text(p.speedup_ci.high, 2) << "</td><td>"
              << number_text(p.baseline_median_seconds, 3) << "</td><td>"
              << number_text(p.submission_median_seconds, 3) << "</td><td class='change'>";
            if (const ChangePoint* cp = change_at(s, i))
                h << html_text(change_text(cp->relative_change));
            h << "</td></tr>";
        }
        h << "</table></details></section>";
    }
    h << "</body></html>\n";
    return h.str();
}

}  // namespace trainopt
