// The history as a person reads it: per series a table of runs with its change points flagged
// (Markdown, what `trainopt history` prints and --md writes) and a self-contained HTML page with
// an inline SVG chart per series (--html). The database's contents are untrusted text (reports
// anyone could edit): every string is escaped for its format (scoring/untrusted_text.h).
#pragma once

#include <string>
#include <vector>

#include "scoring/history_series.h"

namespace trainopt {

struct HistoryView {
    std::string database;  // the path shown in the heading
    HistoryFilter filter;
    size_t runs = 0;  // runs that matched the filter
    ChangePointOptions options;
    std::vector<HistorySeries> series;
};

std::string history_to_markdown(const HistoryView& view);
std::string history_to_html(const HistoryView& view);

// One series' chart: speedup per run (oldest left) with 95% CI whiskers, INVALID runs as red
// marks on the axis, each segment's geometric mean as a line and each change point as a dashed
// vertical line labelled with its change. Plain SVG elements only, every string escaped.
std::string history_chart_svg(const HistorySeries& series);

}  // namespace trainopt
