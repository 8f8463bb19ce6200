// Untrusted text (log tails, file names, kernel names, saved reports) is made inert for the
// terminal, Markdown and HTML by scoring/untrusted_text.h; the reports use it for every string.
#include "scoring/untrusted_text.h"

#include <gtest/gtest.h>

#include "markdown_check.h"
#include "scoring/report.h"

namespace trainopt {
namespace {

// True when s holds no control byte other than '\n' and '\t' (no ESC, CR, BEL, DEL, ...) and
// no C1 control, bidi control or invalid UTF-8: the property every output here must have.
bool only_safe_characters(const std::string& s) {
    return terminal_safe(s) == s;
}

TEST(UntrustedText, KeepsOrdinaryTextUnchanged) {
    const std::string text =
        "loss 2.5 at step 3\n\tsee baseline/train.cpp:42 (µ, ü, 中文, 🙂)";
    EXPECT_EQ(terminal_safe(text), text);
}

TEST(UntrustedText, RemovesCsiSequences) {
    EXPECT_EQ(terminal_safe("\x1b[2J\x1b[H\x1b[1;32mVALID\x1b[0m 12.0x"), "VALID 12.0x");
    EXPECT_EQ(terminal_safe("a\x1b[?25lb\x1b[38;5;196mc"), "abc");  // private and 256-colour
    EXPECT_EQ(terminal_safe("\x1b[3"), "");                         // truncated at the end
}

TEST(UntrustedText, RemovesOscWithBelAndStTerminators) {
    EXPECT_EQ(terminal_safe("\x1b]0;fake title\x07"
                            "after"),
              "after");
    EXPECT_EQ(terminal_safe("\x1b]2;fake title\x1b\\after"), "after");
    EXPECT_EQ(terminal_safe("\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\"), "click");
    EXPECT_EQ(terminal_safe("\x1b]52;c;ZWNobyBwd25lZA==\x07x"), "x");  // clipboard write
    // C1 ST (U+009C) ends it too; an unterminated string hides at most the rest of its line
    EXPECT_EQ(terminal_safe("\x1b]0;t\xc2\x9cz"), "z");
    EXPECT_EQ(terminal_safe("a\x1b]0;never ends\nnext line"), "a\nnext line");
}

TEST(UntrustedText, RemovesOtherEscapeForms) {
    EXPECT_EQ(terminal_safe("a\x1b"
                            "cb"),
              "ab");                                             // reset terminal
    EXPECT_EQ(terminal_safe("a\x1b(0b"), "ab");                  // character set
    EXPECT_EQ(terminal_safe("a\x1bPq#0;2;0;0;0\x1b\\b"), "ab");  // DCS (sixel)
    EXPECT_EQ(terminal_safe("a\x1b_apc\x1b\\b\x1b^pm\x07"
                            "c"),
              "abc");
    EXPECT_EQ(terminal_safe("a\x1b\x1b[31mb\x1b"), "ab");  // lone ESC, ESC at the end
}

TEST(UntrustedText, RemovesControlCharacters) {
    EXPECT_EQ(terminal_safe(std::string("a\0b\x07"
                                        "c\x08"
                                        "d\x7f"
                                        "e\x0b\x0c",
                                        11)),
              "abcde");
    EXPECT_EQ(terminal_safe("fake\rVALID"), "fake\nVALID");  // no overwriting a line
    EXPECT_EQ(terminal_safe("one\r\ntwo\n"), "one\ntwo\n");
}

TEST(UntrustedText, RemovesC1Controls) {
    // as UTF-8 code points (CSI U+009B with its sequence, OSC U+009D with its string)
    EXPECT_EQ(terminal_safe("a\xc2\x9b"
                            "2Jb"),
              "ab");
    EXPECT_EQ(terminal_safe("a\xc2\x9d"
                            "0;title\x07"
                            "b"),
              "ab");
    EXPECT_EQ(terminal_safe("a\xc2\x80\xc2\x91"  // PAD, PU1
                            "b"),
              "ab");
    EXPECT_EQ(terminal_safe("a\xc2\x85"
                            "b"),
              "a\nb");  // NEL is a line break
    // as raw bytes they are not UTF-8 at all
    EXPECT_EQ(terminal_safe("a\x9b"
                            "2Jb"),
              "a\xEF\xBF\xBD"
              "2Jb");
}

TEST(UntrustedText, RemovesBidiAndInvisibleTagCharacters) {
    // RLO ... PDF (U+202E, U+202C), RLI ... PDI (U+2067, U+2069), LRM, ALM
    EXPECT_EQ(terminal_safe("a\u202eDILAV\u202cb"), "aDILAVb");
    EXPECT_EQ(terminal_safe("a\u2067x\u2069\u200e\u061cb"), "axb");
    EXPECT_EQ(terminal_safe("ok\U000E0049\U000E0067"), "ok");  // tag characters
    EXPECT_EQ(terminal_safe("a\u2028b"), "a\nb");
}

TEST(UntrustedText, ReplacesInvalidUtf8) {
    const std::string r = "\xEF\xBF\xBD";
    EXPECT_EQ(terminal_safe("a\xff"
                            "b"),
              "a" + r + "b");
    EXPECT_EQ(terminal_safe("a\xc0\xaf"
                            "b"),
              "a" + r + r + "b");  // overlong '/'
    EXPECT_EQ(terminal_safe("a\xed\xa0\x80"
                            "b"),
              "a" + r + r + r + "b");                             // surrogate
    EXPECT_EQ(terminal_safe("a\xe2\x82"), "a" + r);               // truncated
    EXPECT_EQ(terminal_safe("\xf4\x90\x80\x80"), r + r + r + r);  // beyond U+10FFFF
    EXPECT_EQ(terminal_safe("\x80\x80"), r + r);                  // stray continuations
}

TEST(UntrustedText, IsIdempotentAndAlwaysSafe) {
    const std::vector<std::string> nasty = {
        "\x1b\x1b[[31m",   "\x1b[\x1b]0;x\x07", "\x1b]\x1b\\\\", "\xc2\x9b\xc2\x9b",
        "\xc2\x1b[31m",    "\xe2\x80\x1b[2J",   "\r\r\n\n",      std::string("\0\x1b\0[2J", 5),
        "\x1b(\x1b)\x1b*", "\xf0\x9f\x1b"};
    for (const std::string& s : nasty) {
        const std::string once = terminal_safe(s);
        EXPECT_EQ(terminal_safe(once), once) << ::testing::PrintToString(s);
        EXPECT_EQ(once.find('\x1b'), std::string::npos) << ::testing::PrintToString(s);
        EXPECT_EQ(once.find('\r'), std::string::npos) << ::testing::PrintToString(s);
    }
}

TEST(UntrustedText, SingleLineVariant) {
    EXPECT_EQ(terminal_safe_line("  error: x\n\n  \tnote: y\r\n"), "error: x / note: y");
    EXPECT_EQ(terminal_safe_line("\x1b[2Jname\twith tab"), "name with tab");
    EXPECT_EQ(terminal_safe_line(""), "");
}

TEST(UntrustedText, TailIsSanitizedAndBounded) {
    EXPECT_EQ(untrusted_tail("short\x1b[31m log\n\n", 100), "short log");
    std::string log;
    for (int i = 0; i < 100; i++) log += "line " + std::to_string(i) + "\n";
    const std::string tail = untrusted_tail(log, 40);
    EXPECT_EQ(tail.rfind("...\n", 0), 0u) << tail;  // cut, at a line start
    EXPECT_LE(tail.size(), 44u);
    EXPECT_NE(tail.find("line 99"), std::string::npos);
    // counts code points, never splits one
    const std::string cut = untrusted_tail(std::string(50, 'x') + "ééé", 2);
    EXPECT_EQ(cut, "...éé");
    EXPECT_EQ(untrusted_tail("abc", 0), "...");
}

TEST(UntrustedText, MarkdownInlineIsInert) {
    EXPECT_EQ(markdown_inline("# VALID | 99x |"), "\\# VALID \\| 99x \\|");
    EXPECT_EQ(markdown_inline("[ok](http://x) <img src=x> **b** _i_ `c` &amp; ~s~ $m$ \\"),
              "\\[ok\\](http://x) \\<img src=x\\> \\*\\*b\\*\\* \\_i\\_ \\`c\\` \\&amp; \\~s\\~ "
              "\\$m\\$ \\\\");
    // one line: a forged table row or heading cannot start a line of its own
    EXPECT_EQ(markdown_inline("x\n| a | b |\n## Findings"),
              "x / \\| a \\| b \\| / \\#\\# Findings");
    EXPECT_TRUE(only_safe_characters(markdown_inline("\x1b[2J\x07\xff")));
}

TEST(UntrustedText, CodeSpanCannotBeClosedEarly) {
    EXPECT_EQ(markdown_code_span("a.patch"), "` a.patch `");
    EXPECT_EQ(markdown_code_span("a`b``c"), "``` a`b``c ```");
    EXPECT_EQ(markdown_code_span("x\n# y"), "` x / # y `");
}

TEST(UntrustedText, FencedBlockCannotBeClosedEarly) {
    EXPECT_EQ(markdown_fenced_block("one\ntwo\n"), "```\none\ntwo\n```\n");
    // a run of backticks inside gets a longer fence; tildes cannot close a backtick fence
    const std::string block = markdown_fenced_block("``````\n# heading\n~~~~", "  ");
    EXPECT_EQ(block, "  ```````\n  ``````\n  # heading\n  ~~~~\n  ```````\n");
    EXPECT_EQ(markdown_fenced_block("a\n\nb", "  "), "  ```\n  a\n\n  b\n  ```\n");
    EXPECT_TRUE(only_safe_characters(markdown_fenced_block("\x1b]0;t\x07x\r")));
}

TEST(UntrustedText, HtmlTextEscapesMarkupAndControls) {
    EXPECT_EQ(html_text("<script>alert('x')</script> & \"q\""),
              "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
    EXPECT_EQ(html_text("\x1b[31mred\x1b[0m"), "red");
}

// A report whose every string is hostile, as a submission or an edited JSON report could make
// it, renders with no control character and no Markdown or HTML of its own.
TEST(UntrustedText, ReportsRenderHostileStringsInertly) {
    const std::string evil =
        "\x1b[2J\x1b[32mVALID\x1b[0m\r\n# Forged heading\n| t | 99x |\n<b>x</b>";
    ScoreReport r;
    r.submission = "sub\x1b]0;title\x07\n# name|x.patch";
    r.submission_kind = evil;
    r.suite = evil;
    r.sandbox = evil;
    r.created_at = evil;
    r.complete = true;
    r.rejected = {"the submission does not build: " + evil};
    r.warnings = {evil};
    TaskReport t;
    t.name = evil;
    t.hot_spot = evil;
    t.valid = false;
    t.reasons = {"the submission's trainer exited with status 1: " + evil + "\n```\n# after"};
    t.warnings = {evil};
    t.baseline_seconds = {1.0};
    t.submission_seconds = {1.0};
    t.baseline_kernel_seconds = {{"matmul", 1.0}};
    t.submission_kernel_seconds = {{evil, 1.0}, {"<script>x</script>", 0.5}};
    r.tasks = {t};
    finalize_report(r);

    const std::string md = report_to_markdown(r);
    EXPECT_TRUE(only_safe_characters(md)) << md;
    // the only headings and table rows are the report's own, and rows have their own cells
    const testing::MarkdownOutline outline = testing::markdown_outline(md);
    ASSERT_EQ(outline.headings.size(), 2u) << md;
    EXPECT_EQ(outline.headings[0], "# trainopt score: REJECTED");
    EXPECT_EQ(outline.headings[1], "## Findings");
    ASSERT_EQ(outline.table_rows.size(), 8u) << md;  // 2 + 3 summary, 2 + 1 task
    EXPECT_EQ(testing::unescaped_pipes(outline.table_rows[7]),
              testing::unescaped_pipes(outline.table_rows[5]));
    EXPECT_EQ(outline.outside_fences.find("<b>"), std::string::npos);  // only in code blocks
    // the reason is still readable, its tail in a code block
    EXPECT_NE(
        md.find("- VALID / \\# Forged heading / \\| t \\| 99x \\| / \\<b\\>x\\</b\\>: INVALID: "
                "the submission's trainer exited with status 1: VALID\n"),
        std::string::npos)
        << md;
    EXPECT_NE(md.find("  ````\n  # Forged heading\n"), std::string::npos) << md;

    const std::string html = report_to_html(r);
    EXPECT_TRUE(only_safe_characters(html));
    EXPECT_EQ(html.find("<b>x</b>"), std::string::npos);
    EXPECT_EQ(html.find("<script>"), std::string::npos);
    EXPECT_NE(html.find("&lt;script&gt;x&lt;/script&gt;"), std::string::npos);
}

}  // namespace
}  // namespace trainopt
