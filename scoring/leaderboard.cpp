#include "scoring/leaderboard.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "scoring/report.h"
#include "scoring/report_format.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

namespace fs = std::filesystem;

bool is_valid(const LeaderboardEntry& e) {
    return e.run.verdict == "VALID";
}

// The mean speedup a row is ranked by: NaN unless VALID with a finite mean.
double ranked_speedup(const LeaderboardEntry& e) {
    return is_valid(e) && std::isfinite(e.run.summary.arithmetic) ? e.run.summary.arithmetic
                                                                  : std::nan("");
}

// The tasks of the table's columns, in the order they first appear.
std::vector<std::string> task_columns(const Leaderboard& board) {
    std::vector<std::string> tasks;
    for (const LeaderboardEntry& e : board.entries) {
        for (const HistoryTaskResult& t : e.run.tasks) {
            if (std::find(tasks.begin(), tasks.end(), t.task) == tasks.end())
                tasks.push_back(t.task);
        }
    }
    return tasks;
}

const HistoryTaskResult* task_of(const LeaderboardEntry& e, const std::string& task) {
    for (const HistoryTaskResult& t : e.run.tasks) {
        if (t.task == task) return &t;
    }
    return nullptr;
}

std::string speedup_text(double v, const Interval& ci) {
    if (!std::isfinite(v)) return "-";
    std::string text = format_fixed(v, 2) + "x";
    if (std::isfinite(ci.low) && std::isfinite(ci.high))
        text += " (" + format_fixed(ci.low, 2) + " - " + format_fixed(ci.high, 2) + ")";
    return text;
}

std::string mean_text(const LeaderboardEntry& e) {
    return speedup_text(ranked_speedup(e), e.run.summary.arithmetic_ci);
}

std::string task_text(const LeaderboardEntry& e, const std::string& task) {
    const HistoryTaskResult* t = task_of(e, task);
    if (t == nullptr) return "";
    if (!t->valid) return "INVALID";
    return speedup_text(t->speedup, t->speedup_ci);
}

// What a batch's CIs leave out (docs/batch.md, "A batch ranks; score gives the number to
// quote"); plain text, the same in Markdown and HTML.
constexpr const char* kSharedBaselineNote =
    "Each CI counts that submission's repetitions only: every row is timed against the same "
    "baseline runs of the batch, which move all rows together, so the rows rank; score the "
    "finalists with trainopt score for the number to quote.";

// Where the 4x line goes in a table sorted by speedup: before the first row below it.
size_t line_position(const std::vector<LeaderboardEntry>& rows) {
    for (size_t i = 0; i < rows.size(); i++) {
        const double v = ranked_speedup(rows[i]);
        if (!(v >= kHumanReferenceSpeedup)) return i;
    }
    return rows.size();
}

std::string batch_state(const Leaderboard& board) {
    if (board.finished) return "finished";
    return "in progress, " + std::to_string(board.pending) + " submission(s) still to score";
}

}  // namespace

Result<LeaderboardSort> parse_leaderboard_sort(const std::string& name) {
    if (name == "speedup") return LeaderboardSort::speedup;
    if (name == "submission") return LeaderboardSort::submission;
    if (name == "verdict") return LeaderboardSort::verdict;
    if (name == "position") return LeaderboardSort::position;
    return failure("unknown sort column '" + terminal_safe_line(name) +
                   "': speedup, submission, verdict or position");
}

std::vector<LeaderboardEntry> sorted_entries(const LeaderboardView& view) {
    std::vector<LeaderboardEntry> rows = view.board.entries;
    const LeaderboardSort sort = view.sort;
    std::stable_sort(rows.begin(), rows.end(), [sort](const auto& a, const auto& b) {
        switch (sort) {
            case LeaderboardSort::position:
                return a.position < b.position;
            case LeaderboardSort::submission:
                return a.submission < b.submission;
            case LeaderboardSort::verdict:
                if (a.run.verdict != b.run.verdict) return a.run.verdict > b.run.verdict;
                return a.position < b.position;
            case LeaderboardSort::speedup:
                break;
        }
        const double sa = ranked_speedup(a), sb = ranked_speedup(b);
        if (std::isnan(sa) != std::isnan(sb)) return std::isnan(sb);
        if (!std::isnan(sa) && sa != sb) return sa > sb;
        return a.position < b.position;
    });
    return rows;
}

std::string report_link(const std::string& path, const std::string& base) {
    std::string target = path;
    if (!path.empty() && !base.empty()) {
        std::error_code ec;
        const fs::path relative = fs::absolute(path, ec).lexically_relative(fs::absolute(base, ec));
        if (!ec && !relative.empty()) target = relative.string();
    }
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : target) {
        if (std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '~' || c == '-') {
            out += (char)c;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string leaderboard_to_markdown(const LeaderboardView& view) {
    const Leaderboard& board = view.board;
    const std::vector<std::string> tasks = task_columns(board);
    const std::vector<LeaderboardEntry> rows = sorted_entries(view);
    std::string md = "# Leaderboard\n\n";
    md += "Batch " + markdown_inline(board.out_dir) + ", suite " + markdown_inline(board.suite) +
          ", started " + markdown_inline(board.created_at) + " (" + batch_state(board) +
          "). Mean speedup over the suite's tasks with its 95% CI; the line marks the " +
          format_fixed(kHumanReferenceSpeedup, 0) + "x human-expert reference. " +
          kSharedBaselineNote + "\n\n";
    md += "| # | submission | verdict | mean speedup (95% CI) |";
    std::string rule = "|---|---|---|---|";
    for (const std::string& t : tasks) {
        md += " " + markdown_inline(t) + " |";
        rule += "---|";
    }
    md += "\n" + rule + "\n";
    const size_t line =
        view.sort == LeaderboardSort::speedup ? line_position(rows) : rows.size() + 1;
    for (size_t i = 0; i <= rows.size(); i++) {
        if (i == line) {
            md += "| | **-- " + format_fixed(kHumanReferenceSpeedup, 0) +
                  "x human-expert reference --** | | |";
            for (size_t t = 0; t < tasks.size(); t++) md += " |";
            md += "\n";
        }
        if (i == rows.size()) break;
        const LeaderboardEntry& e = rows[i];
        const std::string name = markdown_inline(e.submission);
        md += "| " + std::to_string(i + 1) + " | " +
              (e.report_path.empty()
                   ? name
                   : "[" + name + "](" + report_link(e.report_path, view.link_base) + ")") +
              " | " + markdown_inline(e.run.verdict) + " | " + mean_text(e) + " |";
        for (const std::string& t : tasks) md += " " + task_text(e, t) + " |";
        md += "\n";
    }
    if (rows.empty()) md += "\nNo submission of this batch is scored yet.\n";
    return md;
}

namespace {

// Sorts the table by the clicked column: numbers (data-v) descending, text ascending; the 4x
// line goes back between the rows above and below it when the column is the mean speedup.
constexpr const char* kSortScript = R"js(
function sortBy(col, numeric) {
  const body = document.getElementById('rows');
  const line = document.getElementById('line');
  const rows = Array.from(body.querySelectorAll('tr.entry'));
  const key = r => r.children[col].dataset.v;
  rows.sort((a, b) => {
    if (numeric) {
      const x = parseFloat(key(a)), y = parseFloat(key(b));
      if (isNaN(x) !== isNaN(y)) return isNaN(x) ? 1 : -1;
      return isNaN(x) ? 0 : y - x;
    }
    return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
  });
  rows.forEach(r => body.appendChild(r));
  body.appendChild(line);
  line.style.display = col === 3 ? '' : 'none';
  if (col === 3) {
    const below = rows.find(r => !(parseFloat(key(r)) >= LINE));
    if (below) body.insertBefore(line, below);
  }
  rows.forEach((r, i) => { r.children[0].textContent = i + 1; });
}
)js";

// The position as text that sorts like the number (the # column sorts as text, ascending).
std::string padded_position(int position) {
    std::string text = std::to_string(position);
    return std::string(text.size() < 8 ? 8 - text.size() : 0, '0') + text;
}

std::string number_attribute(double v) {
    return std::isfinite(v) ? format_fixed(v, 4) : "NaN";
}

}  // namespace

std::string leaderboard_to_html(const LeaderboardView& view) {
    const Leaderboard& board = view.board;
    const std::vector<std::string> tasks = task_columns(board);
    const std::vector<LeaderboardEntry> rows = sorted_entries(view);
    std::string html =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>trainopt leaderboard</title>\n"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}"
        "th{cursor:pointer;background:#f4f4f4}tr.line td{border-top:2px dashed #c00;color:#c00;"
        "font-weight:bold}.INVALID,.REJECTED{color:#a00}.VALID{color:#070}</style>\n"
        "<script>const LINE = " +
        format_fixed(kHumanReferenceSpeedup, 1) + ";" + kSortScript + "</script></head><body>\n";
    html += "<h1>Leaderboard</h1>\n<p>Batch <code>" + html_text(board.out_dir) +
            "</code>, suite <code>" + html_text(board.suite) + "</code>, started " +
            html_text(board.created_at) + " (" + html_text(batch_state(board)) +
            "). Mean speedup over the suite's tasks with its 95% CI. " + kSharedBaselineNote +
            " Click a column to sort.</p>\n";
    html +=
        "<table>\n<thead><tr><th onclick=\"sortBy(0,false)\">#</th>"
        "<th onclick=\"sortBy(1,false)\">submission</th>"
        "<th onclick=\"sortBy(2,false)\">verdict</th>"
        "<th onclick=\"sortBy(3,true)\">mean speedup (95% CI)</th>";
    for (size_t t = 0; t < tasks.size(); t++) {
        html += "<th onclick=\"sortBy(" + std::to_string(4 + t) + ",true)\">" +
                html_text(tasks[t]) + "</th>";
    }
    html += "</tr></thead>\n<tbody id=\"rows\">\n";
    const bool by_speedup = view.sort == LeaderboardSort::speedup;
    const size_t line = by_speedup ? line_position(rows) : rows.size();
    const std::string line_row = "<tr class=\"line\" id=\"line\"" +
                                 std::string(by_speedup ? "" : " style=\"display:none\"") +
                                 "><td></td><td colspan=\"" + std::to_string(3 + tasks.size()) +
                                 "\">" + format_fixed(kHumanReferenceSpeedup, 0) +
                                 "x human-expert reference</td></tr>\n";
    for (size_t i = 0; i <= rows.size(); i++) {
        if (i == line) html += line_row;
        if (i == rows.size()) break;
        const LeaderboardEntry& e = rows[i];
        const std::string name = html_text(e.submission);
        const std::string verdict = html_text(e.run.verdict);
        html += "<tr class=\"entry\"><td data-v=\"" + padded_position(e.position) + "\">" +
                std::to_string(i + 1) + "</td><td data-v=\"" + name + "\">" +
                (e.report_path.empty()
                     ? name
                     : "<a href=\"" + html_text(report_link(e.report_path, view.link_base)) +
                           "\">" + name + "</a>") +
                "</td><td data-v=\"" + verdict + "\" class=\"" + verdict + "\">" + verdict +
                "</td><td data-v=\"" + number_attribute(ranked_speedup(e)) + "\">" +
                html_text(mean_text(e)) + "</td>";
        for (const std::string& t : tasks) {
            const HistoryTaskResult* r = task_of(e, t);
            const double v = r != nullptr && r->valid ? r->speedup : std::nan("");
            html += "<td data-v=\"" + number_attribute(v) + "\">" + html_text(task_text(e, t)) +
                    "</td>";
        }
        html += "</tr>\n";
    }
    html += "</tbody></table>\n";
    if (rows.empty()) html += "<p>No submission of this batch is scored yet.</p>\n";
    html += "</body></html>\n";
    return html;
}

}  // namespace trainopt
