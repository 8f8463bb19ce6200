#include "scoring/report_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "scoring/stats.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

std::string command_name(const ScoreReport& r) {
    for (const char* command : kReportCommands) {
        if (r.command == command) return command;
    }
    return "score";
}

std::string peak_text(const ScoreReport& r) {
    return r.peak_gflops > 0 ? "measured peak " + format_fixed(r.peak_gflops, 1) + " GFLOP/s"
                             : "peak not measured";
}

std::string compile_counts_text(const BuildInfo& build) {
    if (build.compiled_files < 0 || build.files_from_compile_cache < 0) return "";
    return " (compiled " + std::to_string(build.compiled_files) + " of " +
           std::to_string(build.compiled_files + build.files_from_compile_cache) +
           " files, the others from the workspace's compile cache)";
}

std::string build_text(const BuildInfo& build) {
    const std::string seconds = format_fixed(build.seconds, 1) + " s";
    if (!build.from_cache) {
        if (build.seconds <= 0) return "build time not recorded";
        return (build.incremental ? "built incrementally in " : "built in ") + seconds +
               compile_counts_text(build);
    }
    std::string text = "reused from the build cache (key " + build.cache_key.substr(0, 12);
    if (!build.built_at.empty()) text += ", built " + build.built_at + " in " + seconds;
    return text + ")";
}

std::string layer_text(int layer) {
    return layer >= 0 ? std::to_string(layer) : "-";
}

std::vector<StandingRow> standing_rows(const ScoreReport& r) {
    std::vector<StandingRow> rows;
    if (r.references.empty()) return rows;
    auto ci_text = [](const SuiteSummary& s) {
        return "95% CI " + format_fixed(s.arithmetic_ci.low, 2) + " - " +
               format_fixed(s.arithmetic_ci.high, 2);
    };
    rows.push_back({"human expert reference (4-8 hours)", r.human_reference, "", false});
    for (const ReferenceScore& ref : r.references) {
        rows.push_back(
            {reference_label(ref.role), ref.summary.arithmetic,
             ref.verdict == Verdict::valid ? ci_text(ref.summary) : to_string(ref.verdict), false});
    }
    rows.push_back({"this submission", r.summary.arithmetic, ci_text(r.summary), true});
    std::stable_sort(rows.begin(), rows.end(), [](const StandingRow& a, const StandingRow& b) {
        return a.speedup > b.speedup;
    });
    return rows;
}

std::string phases_text(const ScoreReport& r) {
    const PhaseSeconds& p = r.phases;
    if (!r.complete || !(p.total > 0)) return "";  // a partial report's phases are not summed
    auto seconds = [](double s) { return format_fixed(s, s < 10 ? 1 : 0) + " s"; };
    std::string out = "wall time " + seconds(p.total) + ": timed runs " + seconds(p.timed_runs) +
                      " (" + format_fixed(100 * p.timed_runs / p.total, 0) + "%)";
    const std::pair<const char*, double> rest[] = {
        {"build", p.build},     {"verification", p.verification},
        {"machine", p.machine}, {"task data", p.task_data},
        {"setup", p.setup},     {"other", p.other()}};
    for (const auto& [name, s] : rest) out += std::string(", ") + name + " " + seconds(s);
    return out;
}

std::string format_fixed(double v, int digits) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*f", digits, v);
    return buf;
}

std::string format_scientific(double v) {
    if (v == 0) return "0";
    char buf[64];
    snprintf(buf, sizeof(buf), "%.2e", v);
    return buf;
}

std::string speed_of_light_text(const TaskReport& t) {
    return t.speed_of_light_speedup > 0 ? format_fixed(t.speed_of_light_speedup, 0) + "x" : "n/a";
}

bool any_baseline_cached(const ScoreReport& r) {
    for (const TaskReport& t : r.tasks) {
        if (t.baseline_cached) return true;
    }
    return false;
}

std::string baseline_seconds_text(const TaskReport& t) {
    return t.baseline_seconds.empty() && t.baseline_cached
               ? "cached"
               : format_fixed(median(t.baseline_seconds), 2);
}

double measured_speedup(const TaskReport& t) {
    TaskTimes measured = times_of(t);
    measured.valid = true;  // what was measured, whatever the verdict
    return task_speedup(measured);
}

double median_measured(const std::vector<double>& values) {
    std::vector<double> measured;
    for (double v : values) {
        if (std::isfinite(v)) measured.push_back(v);
    }
    return measured.empty() ? std::nan("") : median(measured);
}

std::string loss_text(const std::vector<double>& values) {
    const double m = median_measured(values);
    return std::isfinite(m) ? format_fixed(m, 4) : "n/a";
}

bool has_quality(const ScoreReport& r) {
    for (const TaskReport& t : r.tasks) {
        for (const std::vector<double>* values :
             {&t.baseline_final_loss, &t.submission_final_loss, &t.baseline_heldout_loss,
              &t.submission_heldout_loss}) {
            if (std::isfinite(median_measured(*values))) return true;
        }
    }
    return false;
}

std::string clipped_line(std::string_view text, size_t max_chars) {
    const std::string line = terminal_safe_line(text);  // valid UTF-8
    size_t chars = 0, cut = 0;
    for (size_t i = 0; i < line.size(); i++) {
        if ((line[i] & 0xC0) == 0x80) continue;  // a continuation byte
        if (chars == max_chars - 1) cut = i;     // where the ellipsis goes if needed
        if (++chars > max_chars) return line.substr(0, cut) + "\u2026";
    }
    return line;
}

bool has_text_from(const std::string& s, size_t pos) {
    return pos < s.size() && s.find_first_not_of(" \t\n", pos) != std::string::npos;
}

std::string utc_iso(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string utc_now() {
    return utc_iso(std::time(nullptr));
}

namespace {

// Code points in valid UTF-8 (what terminal_safe_line returns): the width of a cell, near enough.
size_t text_width(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
    return n;
}

}  // namespace

std::string text_table(const std::vector<std::vector<std::string>>& rows,
                       const std::vector<bool>& right, const std::string& indent) {
    std::vector<size_t> widths;
    for (const auto& row : rows) {
        if (widths.size() < row.size()) widths.resize(row.size(), 0);
        for (size_t c = 0; c < row.size(); c++) widths[c] = std::max(widths[c], text_width(row[c]));
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line = indent;
        for (size_t c = 0; c < row.size(); c++) {
            const std::string pad(widths[c] - text_width(row[c]), ' ');
            const bool last = c + 1 == row.size();
            if (c < right.size() && right[c])
                line += pad + row[c];
            else
                line += row[c] + (last ? "" : pad);
            if (!last) line += "  ";
        }
        out += line + "\n";
    }
    return out;
}

std::string wrapped(const std::string& text, const std::string& indent) {
    constexpr size_t kTextWidth = 100;
    std::istringstream words(text);
    std::string out, line, word;
    while (words >> word) {
        if (!line.empty() && indent.size() + line.size() + 1 + word.size() > kTextWidth) {
            out += indent + line + "\n";
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty()) out += indent + line + "\n";
    return out;
}

}  // namespace trainopt
