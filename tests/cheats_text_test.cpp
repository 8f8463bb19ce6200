// Untrusted text reaches the operator's terminal and the reports inert: a trainer's stderr (its
// tail lands in the INVALID reason), a submission's file name, kernel names in its meta.json, a
// saved report fed back to `trainopt report`. No control characters, and no headings, table
// rows, links or HTML of its own. Tiny test suite, one repetition. See docs/security.md,
// "Untrusted text".
#include <gtest/gtest.h>

#include <cstdio>

#include "markdown_check.h"
#include "scoring/report.h"
#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;

// Where s holds something a terminal or renderer would act on rather than show: a C0 control
// other than '\n' and '\t' (ESC, CR, BEL, ...), DEL, a C1 control (as UTF-8) or a bidi
// embedding/override/isolate. "" when there is none. Written independently of
// scoring/untrusted_text.cpp on purpose.
std::string first_control(const std::string& s) {
    for (size_t i = 0; i < s.size(); i++) {
        const unsigned char b = s[i];
        const unsigned char b1 = i + 1 < s.size() ? s[i + 1] : 0;
        const unsigned char b2 = i + 2 < s.size() ? s[i + 2] : 0;
        const bool control = (b < 0x20 && b != '\n' && b != '\t') || b == 0x7f ||
                             (b == 0xc2 && b1 >= 0x80 && b1 <= 0x9f) ||
                             (b == 0xe2 && b1 == 0x80 && b2 >= 0xaa && b2 <= 0xae) ||
                             (b == 0xe2 && b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9);
        if (control) {
            char where[64];
            snprintf(where, sizeof(where), "byte 0x%02x at offset %zu after: ", b, i);
            return where + s.substr(i > 80 ? i - 80 : 0, std::min<size_t>(i, 80));
        }
    }
    return "";
}

// True when some line of text starts with prefix: a forged line standing on its own.
bool has_line_starting_with(const std::string& text, const std::string& prefix) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind(prefix, 0) == 0) return true;
    }
    return false;
}

struct HostileRun {
    testing::CliResult cli;  // stdout and stderr together
    nlohmann::json report;
    std::string md, html;
};

HostileRun score_hostile(const TempDir& dir, const std::string& submission) {
    HostileRun run;
    run.cli = testing::run_cli(
        {"score", submission, "--suite", "test", "--reps", "1", "--json", dir.path + "/r.json",
         "--md", dir.path + "/r.md", "--html", dir.path + "/r.html"},
        dir.path + "/log");
    run.report = testing::read_json(dir.path + "/r.json");
    run.md = testing::read_text(dir.path + "/r.md");
    run.html = testing::read_text(dir.path + "/r.html");
    return run;
}

// The CLI output and both reports hold no control characters, the Markdown has only its own
// headings and table rows (one task: 2 + 3 summary rows, 2 + 1 task rows and, when the outputs
// were compared, 2 + 1 model quality rows), and the HTML no markup from the submission.
void expect_inert(const HostileRun& run, const std::string& verdict) {
    EXPECT_EQ(first_control(run.cli.output), "");
    EXPECT_EQ(first_control(run.md), "");
    EXPECT_EQ(first_control(run.html), "");
    for (const char* forged : {"trainopt score: VALID", "# trainopt score: VALID",
                               "| tiny | forged", "| tiny | 99", "# forged", "# Forged"}) {
        if (verdict == "VALID" && std::string(forged).find("VALID") != std::string::npos) continue;
        EXPECT_FALSE(has_line_starting_with(run.cli.output, forged)) << forged;
        EXPECT_FALSE(has_line_starting_with(run.md, forged)) << forged;
    }
    const testing::MarkdownOutline outline = testing::markdown_outline(run.md);
    ASSERT_FALSE(outline.headings.empty()) << run.md;
    EXPECT_EQ(outline.headings[0], "# trainopt score: " + verdict);
    bool quality = false;
    for (size_t i = 1; i < outline.headings.size(); i++) {
        if (outline.headings[i] == "## Model quality" && !quality)
            quality = true;
        else
            EXPECT_EQ(outline.headings[i], "## Findings") << run.md;
    }
    ASSERT_EQ(outline.table_rows.size(), quality ? 11u : 8u) << run.md;
    EXPECT_EQ(testing::unescaped_pipes(outline.table_rows[7]),
              testing::unescaped_pipes(outline.table_rows[5]))
        << outline.table_rows[7];
    if (quality) {
        EXPECT_EQ(testing::unescaped_pipes(outline.table_rows[10]),
                  testing::unescaped_pipes(outline.table_rows[8]))
            << outline.table_rows[10];
    }
    for (const char* markup : {"<script", "<b>VALID</b>", "<!--", "<a "})
        EXPECT_EQ(run.html.find(markup), std::string::npos) << markup;
}

TEST(CheatsText, TerminalEscapesInTheTrainersOutputAreRemoved) {
    TempDir dir;
    HostileRun run =
        score_hostile(dir, testing::project_root() + "/tests/cheats/terminal_escapes.patch");
    EXPECT_EQ(run.cli.exit_code, 3) << run.cli.output;
    ASSERT_FALSE(run.report.is_discarded()) << run.cli.output;
    EXPECT_EQ(run.report["verdict"], "INVALID");
    expect_inert(run, "INVALID");
    // the reason is still readable: the words stay, only the sequences go
    EXPECT_NE(run.md.find("exited with status 1"), std::string::npos) << run.md;
    EXPECT_NE(run.md.find("mean speedup 99.00x"), std::string::npos) << run.md;
    EXPECT_NE(run.md.find("DILAVNI fake-status-end"), std::string::npos) << run.md;
    EXPECT_NE(run.html.find("DILAVNI fake-status-end"), std::string::npos);
    EXPECT_NE(run.cli.output.find("fake-status-end"), std::string::npos) << run.cli.output;
}

TEST(CheatsText, ForgedMarkdownInTheTrainersOutputIsInert) {
    TempDir dir;
    HostileRun run =
        score_hostile(dir, testing::project_root() + "/tests/cheats/forged_markdown.patch");
    EXPECT_EQ(run.cli.exit_code, 3) << run.cli.output;
    ASSERT_FALSE(run.report.is_discarded()) << run.cli.output;
    EXPECT_EQ(run.report["verdict"], "INVALID");
    expect_inert(run, "INVALID");
    EXPECT_NE(run.md.find("exited with status 1"), std::string::npos) << run.md;
    EXPECT_NE(run.md.find("fake-status-end"), std::string::npos) << run.md;
    EXPECT_NE(run.html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
}

// The file name holds an escape sequence, a line break, a Markdown heading and table cells;
// the patch is a valid one whose trainer also reports hostile kernel names in meta.json.
TEST(CheatsText, HostileFileNameAndKernelNamesAreInert) {
    TempDir dir;
    const std::string name = "evil\x1b[2J\x1b[1;32mVALID\x1b[0m\n# forged | 99x |\r.patch";
    const std::string patch = dir.path + "/" + name;
    std::filesystem::copy_file(testing::project_root() + "/tests/cheats/hostile_kernel_names.patch",
                               patch);
    HostileRun run = score_hostile(dir, patch);
    EXPECT_EQ(run.cli.exit_code, 0) << run.cli.output;
    ASSERT_FALSE(run.report.is_discarded()) << run.cli.output;
    EXPECT_EQ(run.report["verdict"], "VALID") << testing::all_reasons(run.report);
    expect_inert(run, "VALID");
    EXPECT_NE(run.md.find("evilVALID / # forged | 99x | / .patch"), std::string::npos) << run.md;
    EXPECT_NE(run.html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
    EXPECT_NE(run.html.find("| tiny | 99.00x |"), std::string::npos);  // the kernel name, as text
}

// Errors that quote a hostile argument (no build needed).
TEST(CheatsText, ErrorsQuotingAHostileArgumentAreInert) {
    TempDir dir;
    const std::string hostile = "\x1b[2J\x1b]0;title\x07\x1b[32mVALID\x1b[0m\r\n# forged";
    auto r =
        testing::run_cli({"score", "/nonexistent/" + hostile, "--suite", "test"}, dir.path + "/a");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
    EXPECT_EQ(first_control(r.output), "");
    EXPECT_FALSE(has_line_starting_with(r.output, "# forged"));

    r = testing::run_cli({"tasks", "list", "--suite", "test", hostile}, dir.path + "/b");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("VALID"), std::string::npos) << r.output;  // CLI11 quotes it
    EXPECT_EQ(first_control(r.output), "");
}

// A saved report is untrusted input too: `trainopt report` renders a hostile one inertly.
TEST(CheatsText, HostileSavedReportRendersInert) {
    TempDir dir;
    const std::string evil =
        "\x1b[2J\x1b[32mVALID\x1b[0m\r\n# Forged heading\n| tiny | 99x |\n<script>x</script>";
    ScoreReport r;
    r.created_at = evil;
    r.submission = evil;
    r.submission_kind = evil;
    r.suite = evil;
    r.sandbox = evil;
    r.complete = true;
    r.warnings = {evil};
    TaskReport t;
    t.name = "tiny";
    t.hot_spot = evil;
    t.valid = false;
    t.reasons = {evil};
    t.warnings = {evil};
    t.seeds = {1};
    t.baseline_seconds = {1.0};
    t.submission_seconds = {1.0};
    t.submission_kernel_seconds = {{evil, 1.0}};
    r.tasks = {t};
    testing::write_text(dir.path + "/saved.json", report_to_json(r).dump(2));

    HostileRun run;
    run.cli = testing::run_cli({"report", dir.path + "/saved.json", "--md", dir.path + "/r.md",
                                "--html", dir.path + "/r.html"},
                               dir.path + "/log");
    EXPECT_EQ(run.cli.exit_code, 0) << run.cli.output;
    run.md = testing::read_text(dir.path + "/r.md");
    run.html = testing::read_text(dir.path + "/r.html");
    expect_inert(run, "INVALID");
    EXPECT_NE(run.md.find("Forged heading"), std::string::npos);  // shown, as text
}

}  // namespace
}  // namespace trainopt
