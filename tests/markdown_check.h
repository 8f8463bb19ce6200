// A rough Markdown outline for tests that feed hostile text into a report: the heading lines
// and table rows a renderer would see, skipping fenced code blocks (whose content is inert).
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace trainopt::testing {

struct MarkdownOutline {
    std::vector<std::string> headings;    // lines starting with '#' (after up to 3 spaces)
    std::vector<std::string> table_rows;  // lines starting with '|'
    std::string outside_fences;           // every line not in a fenced code block
};

inline MarkdownOutline markdown_outline(const std::string& md) {
    MarkdownOutline outline;
    std::istringstream lines(md);
    std::string fence;  // the open fence, "" outside a fenced block
    for (std::string line; std::getline(lines, line);) {
        const size_t indent = line.find_first_not_of(' ');
        if (indent == std::string::npos) continue;
        const std::string text = line.substr(indent);
        const size_t run = text.find_first_not_of('`');
        const size_t backticks = run == std::string::npos ? text.size() : run;
        if (!fence.empty()) {
            // closed by a line of only backticks, at least as many as the opening fence
            if (backticks >= fence.size() && backticks == text.size()) fence.clear();
            continue;
        }
        if (backticks >= 3) {
            fence = text.substr(0, backticks);
            continue;
        }
        outline.outside_fences += line + "\n";
        if (indent <= 3 && text[0] == '#') outline.headings.push_back(line);
        if (indent == 0 && text[0] == '|') outline.table_rows.push_back(line);
    }
    return outline;
}

// Cell separators in a table row: '|' not escaped by a backslash.
inline size_t unescaped_pipes(const std::string& row) {
    size_t count = 0;
    for (size_t i = 0; i < row.size(); i++) {
        if (row[i] == '\\') {
            i++;
        } else if (row[i] == '|') {
            count++;
        }
    }
    return count;
}

}  // namespace trainopt::testing
