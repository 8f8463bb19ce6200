#include "scoring/report_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

// A pixel coordinate with one decimal: enough for a crisp chart, short in the file.
std::string px(double v) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.1f", v);
    return buf;
}

// A ratio worth drawing: positive and finite (a speedup of 0 means invalid or not measured).
bool drawable(double v) {
    return v > 0 && std::isfinite(v);
}

// The 1-2-5 sequence (..., 0.5, 1, 2, 5, 10, 20, ...) from the decade below `low` to the one
// above `high`.
std::vector<double> one_two_five_values(double low, double high) {
    std::vector<double> values;
    const int first = (int)std::floor(std::log10(low)) - 1;
    const int last = (int)std::ceil(std::log10(high)) + 1;
    for (int decade = first; decade <= last; decade++) {
        for (double mantissa : {1.0, 2.0, 5.0}) values.push_back(mantissa * std::pow(10, decade));
    }
    return values;
}

// A logarithmic axis from `low` to `high` (both 1-2-5 values) onto the pixels [left, right].
struct LogAxis {
    double low = 1;
    double high = 10;
    double left = 0;
    double right = 1;
    std::vector<double> ticks;  // the 1-2-5 values from low to high

    // Values outside the axis are drawn at its ends.
    double x_of(double v) const {
        v = std::clamp(v, low, high);
        return left + (right - left) * std::log(v / low) / std::log(high / low);
    }
};

// The axis that holds every value given (and 1x, where a bar starts), extended to 1-2-5 values.
// Values are kept within 0.001x-1000000x, so a damaged report cannot make the axis absurd.
LogAxis log_axis_around(const std::vector<double>& values, double left, double right) {
    double lo = 1, hi = 1;
    for (double v : values) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    lo = std::clamp(lo, 1e-3, 1e6);
    hi = std::clamp(hi, 1e-3, 1e6);
    const double slack = 1 + 1e-9;  // 2 * 10^-1 is not exactly 0.2
    const std::vector<double> steps = one_two_five_values(lo, hi);
    LogAxis axis;
    axis.left = left;
    axis.right = right;
    axis.low =
        *std::find_if(steps.rbegin(), steps.rend(), [&](double s) { return s <= lo * slack; });
    axis.high =
        *std::find_if(steps.begin(), steps.end(), [&](double s) { return s * slack >= hi; });
    if (axis.high <= axis.low) axis.high = axis.low * 10;
    for (double s : steps) {
        if (s * slack >= axis.low && s <= axis.high * slack) axis.ticks.push_back(s);
    }
    return axis;
}

// "0.5x", "1x", "20x", "1000x".
std::string tick_label(double v) {
    char buf[32];
    snprintf(buf, sizeof(buf), v >= 1 ? "%.0fx" : "%gx", v);
    return buf;
}

// True for 1, 10, 100, ... (a decade tick: the one labelled when ticks are crowded).
bool is_decade(double v) {
    const double exponent = std::log10(v);
    return std::abs(exponent - std::round(exponent)) < 1e-9;
}

// Text with a white outline, readable on top of bars and grid lines.
constexpr const char* kHalo = " paint-order='stroke' stroke='#fff' stroke-width='3'";

constexpr const char* kValidColor = "#3b7dd8";
constexpr const char* kInvalidColor = "#c0392b";
constexpr const char* kHumanColor = "#e67e22";
constexpr const char* kMeanColor = "#1e8449";
constexpr const char* kBoundColor = "#222";

}  // namespace

std::string speedup_chart_svg(const ScoreReport& r) {
    // Columns: task names | plot | the value of each row, aligned for reading down.
    const int width = 1000, name_w = 160, value_w = 200, row_h = 26, bar_h = 14;
    const int top = 24;  // room for the labels of the human and mean lines
    const int plot_left = name_w, plot_right = width - value_w;
    const int rows_bottom = top + (int)r.tasks.size() * row_h;
    const int height = rows_bottom + 46;  // axis, tick labels, axis title

    std::vector<double> values = {r.human_reference};
    bool anything = false;
    for (const TaskReport& t : r.tasks) {
        for (double v : {t.valid ? t.speedup : measured_speedup(t), t.speed_of_light_speedup}) {
            if (!drawable(v)) continue;
            values.push_back(v);
            anything = true;
        }
        if (t.valid && drawable(t.speedup)) {
            values.push_back(t.speedup_ci.low);
            values.push_back(t.speedup_ci.high);
        }
    }
    if (!anything) return "";
    if (drawable(r.summary.arithmetic)) values.push_back(r.summary.arithmetic);
    values.erase(
        std::remove_if(values.begin(), values.end(), [](double v) { return !drawable(v); }),
        values.end());
    const LogAxis axis = log_axis_around(values, plot_left, plot_right);

    std::ostringstream s;
    s << "<svg class='chart' viewBox='0 0 " << width << ' ' << height << "' width='" << width
      << "' height='" << height << "' font-family='sans-serif' font-size='12' role='img'>"
      << "<title>Speedup per task over the baseline, log scale</title>";
    s << "<defs><pattern id='invalid-hatch' width='6' height='6' patternUnits='userSpaceOnUse' "
         "patternTransform='rotate(45)'><rect width='6' height='6' fill='#f7dcd8'/><line x1='0' "
         "y1='0' x2='0' y2='6' stroke='"
      << kInvalidColor << "' stroke-width='2'/></pattern></defs>";

    // Grid: a light line per tick, a darker one at 1x (as fast as the baseline).
    const bool crowded =
        axis.ticks.size() > 1 && (plot_right - plot_left) / (axis.ticks.size() - 1.0) < 44;
    s << "<g class='grid'>";
    for (double v : axis.ticks) {
        const bool parity = std::abs(v - 1) < 1e-9;
        s << "<line x1='" << px(axis.x_of(v)) << "' x2='" << px(axis.x_of(v)) << "' y1='" << top - 4
          << "' y2='" << rows_bottom << "' stroke='" << (parity ? "#888" : "#e4e4e4") << "'/>";
    }
    s << "</g>";

    // One row per task.
    int y = top;
    for (const TaskReport& t : r.tasks) {
        const double mid = y + row_h / 2.0;
        const std::string name = html_text(t.name);
        s << "<g class='task'><text x='" << plot_left - 8 << "' y='" << px(mid + 4)
          << "' text-anchor='end'><title>" << name << "</title>"
          << html_text(clipped_line(t.name, 20)) << "</text>";
        const double ratio = t.valid ? t.speedup : measured_speedup(t);
        if (drawable(ratio)) {
            const double x1 = axis.x_of(1), x2 = axis.x_of(ratio);
            s << "<rect x='" << px(std::min(x1, x2)) << "' y='" << px(mid - bar_h / 2.0)
              << "' width='" << px(std::max(2.0, std::abs(x2 - x1))) << "' height='" << bar_h
              << "' fill='" << (t.valid ? kValidColor : "url(#invalid-hatch)") << "'"
              << (t.valid ? "" : std::string(" stroke='") + kInvalidColor + "'") << "/>";
        }
        if (t.valid && drawable(t.speedup) && drawable(t.speedup_ci.low)) {
            const double lo = axis.x_of(t.speedup_ci.low), hi = axis.x_of(t.speedup_ci.high);
            s << "<path class='ci' d='M" << px(lo) << ' ' << px(mid - 5) << "v10M" << px(lo) << ' '
              << px(mid) << "H" << px(hi) << "M" << px(hi) << ' ' << px(mid - 5)
              << "v10' stroke='#111' stroke-width='1.5' fill='none'/>";
        }
        if (drawable(t.speed_of_light_speedup)) {
            const double x = axis.x_of(t.speed_of_light_speedup);
            s << "<line class='speed-of-light' x1='" << px(x) << "' x2='" << px(x) << "' y1='"
              << y + 2 << "' y2='" << y + row_h - 2 << "' stroke='" << kBoundColor
              << "' stroke-width='3'><title>speed-of-light bound " << speed_of_light_text(t)
              << "</title></line>";
            // its value beside it, on the left when the value column is too close
            const bool room_right = x + 40 < plot_right;
            s << "<text x='" << px(room_right ? x + 5 : x - 5) << "' y='" << px(mid + 4)
              << "' text-anchor='" << (room_right ? "start" : "end")
              << "' font-size='10' fill='#444'" << kHalo << ">" << speed_of_light_text(t)
              << "</text>";
        }
        // The value column: the ratio, struck through when it does not count.
        s << "<text x='" << plot_right + 16 << "' y='" << px(mid + 4) << "'>";
        if (t.valid && drawable(t.speedup)) {
            s << "<tspan font-weight='bold'>" << format_fixed(t.speedup, 2) << "x</tspan>"
              << "<tspan fill='#666'> CI " << format_fixed(t.speedup_ci.low, 2) << "&#8211;"
              << format_fixed(t.speedup_ci.high, 2) << "</tspan>";
        } else if (t.valid) {
            s << "<tspan fill='#666'>no runs yet</tspan>";
        } else if (drawable(ratio)) {
            s << "<tspan fill='" << kInvalidColor << "' text-decoration='line-through'>"
              << format_fixed(ratio, 2) << "x</tspan><tspan fill='" << kInvalidColor
              << "' font-weight='bold'> INVALID</tspan>";
        } else {
            s << "<tspan fill='" << kInvalidColor << "' font-weight='bold'>INVALID</tspan>";
        }
        s << "</text></g>";
        y += row_h;
    }

    // The human reference and the mean, labelled above the plot on opposite sides of their
    // lines so the two labels never overlap.
    const double hx = axis.x_of(r.human_reference);
    const bool mean_drawn = drawable(r.summary.arithmetic);
    const double mx = mean_drawn ? axis.x_of(r.summary.arithmetic) : hx;
    const bool mean_right = mx >= hx;
    s << "<g class='human-reference'><line x1='" << px(hx) << "' x2='" << px(hx) << "' y1='"
      << top - 6 << "' y2='" << rows_bottom << "' stroke='" << kHumanColor
      << "' stroke-dasharray='6,4' stroke-width='2'/><text x='" << px(hx + (mean_right ? -4 : 4))
      << "' y='" << top - 10 << "' text-anchor='" << (mean_right ? "end" : "start") << "' fill='"
      << kHumanColor << "'>human expert " << format_fixed(r.human_reference, 0) << "x</text></g>";
    if (mean_drawn) {
        s << "<g class='mean'><line x1='" << px(mx) << "' x2='" << px(mx) << "' y1='" << top - 6
          << "' y2='" << rows_bottom << "' stroke='" << kMeanColor
          << "' stroke-width='2'/><text x='" << px(mx + (mean_right ? 4 : -4)) << "' y='"
          << top - 10 << "' text-anchor='" << (mean_right ? "start" : "end") << "' fill='"
          << kMeanColor << "'>mean " << format_fixed(r.summary.arithmetic, 2) << "x</text></g>";
    }

    // The axis: a baseline, a tick and a label per 1-2-5 value, and what it measures.
    const int axis_y = rows_bottom + 2;
    s << "<g class='axis'><line x1='" << plot_left << "' x2='" << plot_right << "' y1='" << axis_y
      << "' y2='" << axis_y << "' stroke='#444'/>";
    for (double v : axis.ticks) {
        const double x = axis.x_of(v);
        s << "<line x1='" << px(x) << "' x2='" << px(x) << "' y1='" << axis_y << "' y2='"
          << axis_y + 5 << "' stroke='#444'/>";
        if (!crowded || is_decade(v)) {
            s << "<text class='tick' x='" << px(x) << "' y='" << axis_y + 18
              << "' text-anchor='middle'>" << tick_label(v) << "</text>";
        }
    }
    s << "<text x='" << (plot_left + plot_right) / 2 << "' y='" << axis_y + 38
      << "' text-anchor='middle' fill='#555'>speedup over the baseline (log scale; 1x = as fast "
         "as the baseline)</text></g>";
    s << "</svg>";
    return s.str();
}

std::vector<std::string> kernel_names(const ScoreReport& r) {
    std::vector<std::string> names;
    auto add = [&](const std::map<std::string, double>& kernels) {
        for (const auto& [name, _] : kernels) {
            if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
        }
    };
    for (const TaskReport& t : r.tasks) add(t.baseline_kernel_seconds);
    for (const TaskReport& t : r.tasks) add(t.submission_kernel_seconds);
    return names;
}

std::string kernel_color(size_t index) {
    static const char* colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
                                   "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"};
    return colors[index % (sizeof(colors) / sizeof(colors[0]))];
}

std::string kernel_chart_svg(const TaskReport& t, const std::vector<std::string>& names) {
    auto total_of = [](const std::map<std::string, double>& kernels) {
        double total = 0;
        for (const auto& [_, v] : kernels) total += drawable(v) ? v : 0;
        return total;
    };
    const double base_total = total_of(t.baseline_kernel_seconds);
    const double sub_total = total_of(t.submission_kernel_seconds);
    const double max_total = std::max(base_total, sub_total);
    if (!drawable(max_total)) return "";
    // Columns: side label | bars | total (its own room, so it never overlaps a bar).
    const int width = 480, label_w = 78, total_w = 66, bar_h = 18, row_h = 24;
    const double bar_w = width - label_w - total_w;
    std::ostringstream s;
    s << "<svg class='kernels' viewBox='0 0 " << width << ' ' << 2 * row_h << "' width='" << width
      << "' height='" << 2 * row_h << "' font-family='sans-serif' font-size='12'>";
    int row = 0;
    for (const auto* kernels : {&t.baseline_kernel_seconds, &t.submission_kernel_seconds}) {
        const int y = row * row_h + 2;
        s << "<text x='" << label_w - 6 << "' y='" << y + 13 << "' text-anchor='end'>"
          << (row == 0 ? "baseline" : "submission") << "</text>";
        double x = label_w;
        for (size_t k = 0; k < names.size(); k++) {
            auto it = kernels->find(names[k]);
            if (it == kernels->end() || !drawable(it->second)) continue;
            const double w = bar_w * it->second / max_total;
            s << "<rect x='" << px(x) << "' y='" << y << "' width='" << px(w) << "' height='"
              << bar_h << "' fill='" << kernel_color(k) << "'><title>" << html_text(names[k])
              << ": " << format_fixed(it->second, 3) << " s</title></rect>";
            x += w;
        }
        const double total = row == 0 ? base_total : sub_total;
        s << "<text x='" << width - total_w + 6 << "' y='" << y + 13 << "'>"
          << format_fixed(total, 2) << " s</text>";
        row++;
    }
    s << "</svg>";
    return s.str();
}

}  // namespace trainopt
