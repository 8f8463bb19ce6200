// Untrusted text made safe to show. A submission controls its logs (stderr tails end up in
// INVALID and REJECTED reasons), its file name, and the kernel names in its meta.json; a saved
// JSON report can be edited by anyone. None of that may reach the operator's terminal or the
// Markdown/HTML reports raw: escape sequences could clear the screen or print a fake coloured
// "VALID", and Markdown or HTML could forge headings, table rows or links.
// See docs/security.md, "Untrusted text".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace trainopt {

// For the terminal (and as the first step of every other function here): removes escape
// sequences (CSI, OSC, DCS, SOS, PM, APC and the short ESC forms), every other C0/C1 control
// character and DEL except '\n' and '\t', Unicode bidi controls (U+061C, U+200E/F,
// U+202A-202E, U+2066-2069) and the invisible tag characters (U+E0000-E007F); turns "\r\n", a
// lone '\r', NEL and U+2028/U+2029 into '\n'; replaces invalid UTF-8 (overlong, surrogates,
// truncated) by U+FFFD. The result is valid UTF-8 and the function is idempotent.
std::string terminal_safe(std::string_view text);

// terminal_safe() squeezed onto one line, for inline use: line breaks (with the blank space
// around them) become " / ", tabs become spaces, leading and trailing blanks are trimmed.
std::string terminal_safe_line(std::string_view text);

// For the code that reads a submission's log or compiler output into a message: the last
// max_chars code points of terminal_safe(raw), starting at a line start when one is within the
// first quarter of them, with "..." in front when anything was cut; trailing blanks trimmed.
std::string untrusted_tail(std::string_view raw, size_t max_chars);

// Inert Markdown for a table cell or a list item (after other text on the line):
// terminal_safe_line() with every character that can open Markdown, GFM or HTML syntax
// (\ ` * _ [ ] < > | # ~ & $) backslash-escaped, so the text renders exactly as written.
std::string markdown_inline(std::string_view text);

// A Markdown code span around terminal_safe_line(text) whose backtick fence is longer than
// any backtick run inside, so it cannot be closed early. Not for table cells: GFM splits cells
// at '|' even inside code spans.
std::string markdown_code_span(std::string_view text);

// A fenced Markdown code block holding terminal_safe(text), for multi-line text such as a log
// tail. The fence is longer than any backtick run inside (at least 3), so the text cannot close
// it; every line, fences included, starts with indent (e.g. "  " to stay inside a list item).
// Ends with a newline.
std::string markdown_fenced_block(std::string_view text, std::string_view indent = "");

// HTML (or SVG) text or attribute value: terminal_safe(text) with & < > " ' as entities.
std::string html_text(std::string_view text);

}  // namespace trainopt
