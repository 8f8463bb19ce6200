// The HTML report as a person reads it: a speedup chart with a real axis, the speed-of-light
// bound and the human line drawn on it, an INVALID task's measured ratio shown struck through,
// a table whose rows fill every column, numbers that do not wrap, text from the submission
// escaped, and a self-contained page (no scripts, nothing loaded from elsewhere).
// scripts/screenshot-report.sh renders a report to a PNG for looking at it.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <string>

#include "scoring/report.h"

namespace trainopt {
namespace {

// One valid task (11x, speed of light 110x) and one INVALID task whose times say 11x.
ScoreReport sample_report() {
    ScoreReport r;
    r.created_at = "2026-11-22T00:00:00Z";
    r.submission = "subs/x";
    r.submission_kind = "overlay";
    r.suite = "test";
    r.sandbox = "bubblewrap";
    r.threads = 2;
    r.reps = 3;
    r.seed = 9;
    r.peak_gflops = 100;
    r.complete = true;
    TaskReport a;
    a.name = "matmul";
    a.hot_spot = "matmul";
    a.baseline_seconds = {10, 11, 12};
    a.submission_seconds = {1, 1.1, 0.9};
    a.steps = 10;
    a.step_gflop = 1.0;
    a.max_loss_diff = 1.234e-5;
    a.max_heldout_diff = 2.5e-7;
    a.max_weight_distance = 0.0125;
    a.baseline_peak_rss_mb = 312;
    a.submission_peak_rss_mb = 298;
    a.baseline_kernel_seconds = {{"matmul", 8.0}, {"attention", 2.0}};
    a.submission_kernel_seconds = {{"matmul", 0.5}};
    TaskReport b = a;
    b.name = "small";
    b.valid = false;
    b.reasons = {"loss trajectory differs"};
    r.tasks = {a, b};
    finalize_report(r);
    return r;
}

size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) n++;
    return n;
}

// The text between the first `open` and the next `close` after it ("" when absent).
std::string between(const std::string& s, const std::string& open, const std::string& close) {
    const size_t start = s.find(open);
    if (start == std::string::npos) return "";
    const size_t end = s.find(close, start);
    return s.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(HtmlReport, SpeedupChartHasALogAxisWithTicks) {
    const std::string html = report_to_html(sample_report());
    const std::string axis = between(html, "<g class='axis'>", "</g>");
    ASSERT_FALSE(axis.empty()) << html;
    // 1x (where bars start) up to the 110x bound, on 1-2-5 ticks
    for (const char* tick : {">1x<", ">2x<", ">5x<", ">10x<", ">20x<", ">50x<", ">100x<", ">200x<"})
        EXPECT_NE(axis.find(tick), std::string::npos) << tick << "\n" << axis;
    EXPECT_EQ(axis.find(">0.5x<"), std::string::npos) << axis;  // nothing below 1x to show
    EXPECT_NE(axis.find("speedup over the baseline (log scale"), std::string::npos);
    EXPECT_EQ(count(axis, "<text class='tick'"), 8u);
}

TEST(HtmlReport, SpeedOfLightBoundHumanLineAndMeanAreDrawn) {
    const std::string html = report_to_html(sample_report());
    EXPECT_EQ(count(html, "<line class='speed-of-light'"), 2u);  // one per task
    EXPECT_NE(html.find("speed-of-light bound 110x"), std::string::npos);
    EXPECT_NE(html.find("<g class='human-reference'>"), std::string::npos);
    EXPECT_NE(html.find("human expert 4x"), std::string::npos);
    EXPECT_NE(html.find("<g class='mean'>"), std::string::npos);
    EXPECT_NE(html.find("mean 5.50x"), std::string::npos);
}

TEST(HtmlReport, WithoutAMeasuredPeakNoBoundIsDrawn) {
    ScoreReport r = sample_report();
    r.peak_gflops = 0;
    for (TaskReport& t : r.tasks) t.speed_of_light_seconds = t.speed_of_light_speedup = 0;
    finalize_report(r);
    const std::string html = report_to_html(r);
    EXPECT_EQ(html.find("<line class='speed-of-light'"), std::string::npos);
    EXPECT_NE(html.find("<td class='num'>n/a</td>"), std::string::npos);
    // the axis still runs from 1x past the human line
    EXPECT_NE(between(html, "<g class='axis'>", "</g>").find(">20x<"), std::string::npos);
}

TEST(HtmlReport, InvalidTaskShowsItsMeasuredRatioStruckThrough) {
    const std::string html = report_to_html(sample_report());
    // the table: valid task plain, INVALID task struck through
    EXPECT_NE(html.find("<td class='num'>11.00x</td>"), std::string::npos);
    EXPECT_NE(html.find("<s class='measured' title='measured; an INVALID task counts as 0'>"
                        "11.00x</s>"),
              std::string::npos)
        << html;
    EXPECT_NE(html.find("<td class='bad'>INVALID</td>"), std::string::npos);
    // the chart: a hatched bar and a struck-through label
    EXPECT_NE(html.find("fill='url(#invalid-hatch)'"), std::string::npos);
    EXPECT_NE(html.find("text-decoration='line-through'>11.00x</tspan>"), std::string::npos);
    // its reason is among the findings
    EXPECT_NE(html.find("<strong>small: INVALID:</strong> loss trajectory differs"),
              std::string::npos);
}

TEST(HtmlReport, InvalidTaskWithoutRunsSaysSoWithoutARatio) {
    ScoreReport r = sample_report();
    r.tasks[1].baseline_seconds.clear();
    r.tasks[1].submission_seconds.clear();
    finalize_report(r);
    const std::string html = report_to_html(r);
    EXPECT_EQ(count(html, "line-through"), 0u);
    EXPECT_EQ(count(html, "<s class='measured'"), 0u);
    EXPECT_NE(html.find("font-weight='bold'>INVALID</tspan>"), std::string::npos);
}

TEST(HtmlReport, EveryTableRowFillsEveryColumn) {
    const std::string html = report_to_html(sample_report());
    const std::string table = between(html, "<table>", "</table>");
    ASSERT_FALSE(table.empty());
    const size_t columns = count(between(table, "<tr>", "</tr>"), "<th");
    EXPECT_EQ(columns, 12u);
    EXPECT_EQ(count(table, "<td"), 2 * columns);  // two tasks
    EXPECT_NE(table.find("<td class='num'>312 / 298</td>"), std::string::npos) << table;
}

TEST(HtmlReport, NumbersAreShortAndDoNotWrap) {
    const std::string html = report_to_html(sample_report());
    EXPECT_NE(html.find("td.num{white-space:nowrap"), std::string::npos);
    EXPECT_NE(html.find("<td class='num'>1.23e-05</td>"), std::string::npos) << html;
    EXPECT_NE(html.find("<td class='num'>2.50e-07</td>"), std::string::npos);
    EXPECT_NE(html.find("<td class='num'>1.25e-02</td>"), std::string::npos);
    // every cell that is not text or the valid flag is a number cell
    const std::string table = between(html, "<table>", "</table>");
    EXPECT_EQ(count(table, "<td class='num'>"),
              count(table, "<td") - count(table, "<td class='text'>") -
                  count(table, "<td class='ok'>") - count(table, "<td class='bad'>"));
}

TEST(HtmlReport, KernelTotalsSitRightOfTheirBars) {
    const std::string html = report_to_html(sample_report());
    const std::string chart = between(html, "<svg class='kernels'", "</svg>");
    ASSERT_FALSE(chart.empty()) << html;
    const std::regex rect("<rect x='([0-9.]+)' y='[0-9.]+' width='([0-9.]+)'");
    double bars_end = 0;
    for (std::sregex_iterator it(chart.begin(), chart.end(), rect), end; it != end; ++it)
        bars_end = std::max(bars_end, std::stod((*it)[1]) + std::stod((*it)[2]));
    const std::regex total("<text x='([0-9.]+)' y='[0-9.]+'>[0-9.]+ s</text>");
    int totals = 0;
    for (std::sregex_iterator it(chart.begin(), chart.end(), total), end; it != end; ++it) {
        EXPECT_GT(std::stod((*it)[1]), bars_end);
        totals++;
    }
    EXPECT_EQ(totals, 2);      // baseline and submission
    EXPECT_GT(bars_end, 300);  // the baseline's bar fills its room
}

// After a failure, the final weights per tensor, the farthest first, each with the backward
// kernels behind its gradient; a valid task of a score shows none.
TEST(HtmlReport, FailedTaskShowsItsTensorsWithTheirKernels) {
    ScoreReport r = sample_report();
    const std::string evil = "<b>qkvw</b>";
    r.tasks[1].tensors = {{"wte", -1, 0.5, "encoder_backward, matmul_backward of the head"},
                          {evil, 1, 2.5e-3, "matmul_backward of the attention's qkv projection"}};
    r.tasks[0].tensors = {{"lnfw", -1, 1e-6, "layernorm_backward"}};
    finalize_report(r);
    const std::string html = report_to_html(r);
    const std::string section = between(html, "<h2>Final weights per tensor</h2>", "</section>");
    ASSERT_FALSE(section.empty()) << html;
    EXPECT_NE(section.find("relative to the reference&#39;s update of it"), std::string::npos);
    EXPECT_NE(section.find("<figcaption>small</figcaption>"), std::string::npos) << section;
    EXPECT_EQ(section.find("<figcaption>matmul</figcaption>"), std::string::npos);  // valid
    EXPECT_EQ(section.find("lnfw"), std::string::npos);
    EXPECT_NE(section.find("<tr><td class='text'>wte</td><td class='num'>-</td><td "
                           "class='num'>5.00e-01</td><td class='text'>encoder_backward, "
                           "matmul_backward of the head</td></tr>"),
              std::string::npos)
        << section;
    EXPECT_NE(section.find("<td class='text'>&lt;b&gt;qkvw&lt;/b&gt;</td><td class='num'>1</td>"),
              std::string::npos);
    EXPECT_EQ(section.find("<b>"), std::string::npos);
    EXPECT_LT(section.find("wte"), section.find("qkvw"));  // the report's order: farthest first
    // a verify report shows every task's tensors
    r.command = "verify";
    EXPECT_NE(report_to_html(r).find("<figcaption>matmul</figcaption>"), std::string::npos);
    // a score without failures or tensors has no such section
    EXPECT_EQ(report_to_html(sample_report()).find("Final weights per tensor"), std::string::npos);
}

TEST(HtmlReport, PageIsSelfContained) {
    const std::string html = report_to_html(sample_report());
    for (const char* external : {"<script", "<link", "<img", "<iframe", "<object",
                                 "src=", "href=", "http:", "https:", "@import", "url(http", "<a "})
        EXPECT_EQ(html.find(external), std::string::npos) << external;
    EXPECT_EQ(count(html, "url("), count(html, "url(#"));  // only the chart's own hatch pattern
}

TEST(HtmlReport, TextFromTheSubmissionIsEscaped) {
    ScoreReport r = sample_report();
    const std::string evil = "<img src=x onerror=alert(1)>&amp;\x1b[31m\"'";
    r.submission = evil;
    r.tasks[0].name = evil;
    r.tasks[0].hot_spot = evil;
    r.tasks[0].warnings = {evil};
    r.tasks[1].reasons = {"the trainer exited with status 1: " + evil + "\n<script>x</script>"};
    r.tasks[1].submission_kernel_seconds = {{evil, 0.25}};
    r.warnings = {evil};
    finalize_report(r);
    const std::string html = report_to_html(r);
    EXPECT_EQ(html.find("<img"), std::string::npos);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_EQ(html.find('\x1b'), std::string::npos);
    EXPECT_NE(html.find("&lt;img src=x onerror=alert(1)&gt;&amp;amp;&quot;&#39;"),
              std::string::npos)
        << html;
    EXPECT_NE(html.find("<pre>&lt;script&gt;x&lt;/script&gt;</pre>"), std::string::npos);
    // in the chart (clipped to fit, the whole name in its tooltip), table, findings, legend
    EXPECT_GE(count(html, "&lt;img src=x onerror=alert(1)&gt;"), 6u);
}

TEST(HtmlReport, LongNamesAreClippedInTheChartOnly) {
    ScoreReport r = sample_report();
    r.tasks[0].name = std::string(60, 'n');
    finalize_report(r);
    const std::string html = report_to_html(r);
    EXPECT_NE(html.find("<title>" + std::string(60, 'n') + "</title>" + std::string(19, 'n') +
                        "\u2026</text>"),
              std::string::npos);
    EXPECT_NE(html.find("<td class='text'>" + std::string(60, 'n') + "</td>"), std::string::npos);
}

TEST(HtmlReport, RejectedSubmissionShowsTheRefusalAndNoChart) {
    ScoreReport r;
    r.submission = "subs/broken.patch";
    r.complete = true;
    r.rejected = {"the submission does not build:\nerror: expected ';' before <token>"};
    finalize_report(r);
    ASSERT_EQ(r.verdict, Verdict::rejected);
    const std::string html = report_to_html(r);
    EXPECT_NE(html.find("<span class='verdict verdict-bad'>REJECTED</span>"), std::string::npos);
    EXPECT_NE(html.find("No score: the submission was refused before any run."), std::string::npos);
    EXPECT_NE(html.find("<strong>REJECTED:</strong> the submission does not build:<pre>"
                        "error: expected &#39;;&#39; before &lt;token&gt;</pre>"),
              std::string::npos)
        << html;
    EXPECT_EQ(html.find("<svg"), std::string::npos);
    EXPECT_EQ(html.find("<table"), std::string::npos);
    EXPECT_EQ(html.find("mean speedup"), std::string::npos);  // no headline numbers to show
}

TEST(HtmlReport, AbsurdRatiosKeepTheAxisFinite) {
    ScoreReport r = sample_report();
    r.tasks[1].submission_seconds = {1e-12, 1e-12, 1e-12};  // a trainer that "ran" in 1 ps
    r.tasks[0].submission_seconds = {1e9, 1e9, 1e9};
    finalize_report(r);
    const std::string html = report_to_html(r);
    EXPECT_EQ(html.find("nan"), std::string::npos);
    EXPECT_EQ(html.find("inf"), std::string::npos);
    const std::string axis = between(html, "<g class='axis'>", "</g>");
    EXPECT_NE(axis.find(">1000000x<"), std::string::npos) << axis;  // the axis' cap
    EXPECT_NE(axis.find(">0.001x<"), std::string::npos) << axis;
    EXPECT_LE(count(axis, "<text class='tick'"), 10u);  // crowded: decades only
}

}  // namespace
}  // namespace trainopt
