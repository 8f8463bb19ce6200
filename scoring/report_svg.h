// The inline SVG charts of the HTML report (report_html.cpp). Plain SVG elements only: no
// scripts, no external references, every string from the report escaped with html_text().
#pragma once

#include <string>
#include <vector>

#include "scoring/report.h"

namespace trainopt {

// Speedup per task on a logarithmic axis with 1-2-5 ticks: a bar from 1x to the median ratio
// with its 95% CI whiskers, the task's speed-of-light bound as a dark tick, the human expert
// reference as a dashed vertical line and the suite's arithmetic mean as a solid one. An
// INVALID task's measured ratio is drawn hatched and labelled struck through (it counts as 0).
// Empty when no task has a ratio or a bound to draw.
std::string speedup_chart_svg(const ScoreReport& r);

// The kernel names of all tasks, in the order the charts and the legend colour them: each
// task's baseline kernels (alphabetical), then kernels only a submission reported.
std::vector<std::string> kernel_names(const ScoreReport& r);

// The fill colour of kernel_names()[index].
std::string kernel_color(size_t index);

// Two stacked bars of one task's self-reported per-kernel seconds, baseline above submission,
// both on the scale of the larger total, each with its total to the right. Colours follow
// `names` (kernel_names()); empty when the task reported no kernel times.
std::string kernel_chart_svg(const TaskReport& t, const std::vector<std::string>& names);

}  // namespace trainopt
