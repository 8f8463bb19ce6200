#include "scoring/untrusted_text.h"

#include <algorithm>

namespace trainopt {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Decodes the UTF-8 code point at s[i] into cp and returns its length. Invalid UTF-8 (stray
// continuation bytes, overlong forms, surrogates, beyond U+10FFFF, truncated) sets valid to
// false and returns the length of the maximal invalid subpart (at least 1), the unit that
// Unicode recommends replacing by one U+FFFD.
size_t decode_utf8(std::string_view s, size_t i, char32_t& cp, bool& valid) {
    const unsigned char lead = s[i];
    valid = false;
    cp = lead;
    if (lead < 0x80) {
        valid = true;
        return 1;
    }
    size_t continuation = 0;
    unsigned char second_low = 0x80, second_high = 0xBF;  // narrower after E0, ED, F0, F4
    if (lead >= 0xC2 && lead <= 0xDF) {
        continuation = 1;
        cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        continuation = 2;
        cp = lead & 0x0F;
        if (lead == 0xE0) second_low = 0xA0;   // overlong
        if (lead == 0xED) second_high = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        continuation = 3;
        cp = lead & 0x07;
        if (lead == 0xF0) second_low = 0x90;   // overlong
        if (lead == 0xF4) second_high = 0x8F;  // beyond U+10FFFF
    } else {
        return 1;
    }
    size_t length = 1;
    for (size_t k = 0; k < continuation; k++) {
        if (i + length >= s.size()) return length;
        const unsigned char b = s[i + length];
        if (b < (k == 0 ? second_low : 0x80) || b > (k == 0 ? second_high : 0xBF)) return length;
        cp = (cp << 6) | (b & 0x3F);
        length++;
    }
    valid = true;
    return length;
}

// Format characters that reorder or hide the text around them (Trojan Source, smuggled
// instructions): bidi embeddings, overrides, isolates and marks, and the tag characters.
bool is_hidden_format(char32_t cp) {
    return cp == 0x061C || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || (cp >= 0xE0000 && cp <= 0xE007F);
}

// Skips the body of a control sequence (after ESC '[' or the C1 CSI): parameter and
// intermediate bytes, then the final byte. Stops early at anything else, which the caller
// then handles on its own (a control character is dropped, text is kept).
size_t skip_csi(std::string_view s, size_t i) {
    while (i < s.size() && s[i] >= 0x20 && s[i] <= 0x3F) i++;
    if (i < s.size() && s[i] >= 0x40 && s[i] <= 0x7E) i++;
    return i;
}

// Skips the body of a control string (OSC, DCS, SOS, PM, APC) up to and including its
// terminator: BEL, ESC '\' or the C1 ST. A newline or another ESC also ends it (kept for the
// caller), so one unterminated string hides at most the rest of its line.
size_t skip_control_string(std::string_view s, size_t i) {
    while (i < s.size()) {
        const char c = s[i];
        if (c == '\a') return i + 1;
        if (c == '\n') return i;
        if (c == '\x1b') return i + 1 < s.size() && s[i + 1] == '\\' ? i + 2 : i;
        if (c == '\xC2' && i + 1 < s.size() && s[i + 1] == '\x9C') return i + 2;
        i++;
    }
    return i;
}

// Skips what follows an ESC at s[i - 1].
size_t skip_escape(std::string_view s, size_t i) {
    if (i >= s.size()) return i;
    const char c = s[i];
    if (c == '[') return skip_csi(s, i + 1);
    if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_')
        return skip_control_string(s, i + 1);
    if (c >= 0x20 && c <= 0x2F) {  // nF: intermediates then a final byte, e.g. ESC ( B
        while (i < s.size() && s[i] >= 0x20 && s[i] <= 0x2F) i++;
        return i < s.size() && s[i] >= 0x30 && s[i] <= 0x7E ? i + 1 : i;
    }
    if (c >= 0x30 && c <= 0x7E) return i + 1;  // Fp, Fe, Fs: ESC 7, ESC c (reset), ...
    return i;  // a lone ESC: drop it, handle the next character normally
}

size_t longest_backtick_run(std::string_view s) {
    size_t longest = 0, run = 0;
    for (char c : s) {
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    return longest;
}

void trim_trailing_blanks(std::string& s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.pop_back();
}

}  // namespace

std::string terminal_safe(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        char32_t cp;
        bool valid;
        const size_t n = decode_utf8(s, i, cp, valid);
        if (!valid) {
            out += kReplacement;
            i += n;
        } else if (cp == 0x1B) {
            i = skip_escape(s, i + 1);
        } else if (cp == 0x9B) {  // C1 CSI
            i = skip_csi(s, i + n);
        } else if (cp == 0x90 || cp == 0x98 || cp == 0x9D || cp == 0x9E || cp == 0x9F) {
            i = skip_control_string(s, i + n);  // C1 DCS, SOS, OSC, PM, APC
        } else if (cp == '\r') {
            out += '\n';
            i += n;
            if (i < s.size() && s[i] == '\n') i++;
        } else if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) {  // NEL, line/paragraph sep.
            out += '\n';
            i += n;
        } else if (cp == '\n' || cp == '\t') {
            out += static_cast<char>(cp);
            i += n;
        } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || is_hidden_format(cp)) {
            i += n;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

std::string terminal_safe_line(std::string_view text) {
    const std::string safe = terminal_safe(text);
    std::string out;
    size_t start = 0;
    while (start <= safe.size()) {
        size_t end = safe.find('\n', start);
        if (end == std::string::npos) end = safe.size();
        std::string line = safe.substr(start, end - start);
        std::replace(line.begin(), line.end(), '\t', ' ');
        const size_t first = line.find_first_not_of(' ');
        if (first != std::string::npos) {
            const size_t last = line.find_last_not_of(' ');
            if (!out.empty()) out += " / ";
            out += line.substr(first, last - first + 1);
        }
        start = end + 1;
    }
    return out;
}

std::string untrusted_tail(std::string_view raw, size_t max_chars) {
    std::string safe = terminal_safe(raw);
    trim_trailing_blanks(safe);
    // safe is valid UTF-8: every byte that is not a continuation byte starts a code point
    auto is_start = [&](size_t i) { return (static_cast<unsigned char>(safe[i]) & 0xC0) != 0x80; };
    size_t count = 0;
    for (size_t i = 0; i < safe.size(); i++) count += is_start(i);
    if (count <= max_chars) return safe;
    size_t from = 0;
    for (size_t skipped = 0; from < safe.size(); from++) {
        if (is_start(from) && skipped++ == count - max_chars) break;
    }
    // a clean cut at a line start when one is near
    size_t seen = 0;
    for (size_t i = from; i < safe.size() && seen <= max_chars / 4; i++) {
        if (safe[i] == '\n') return "...\n" + safe.substr(i + 1);
        seen += is_start(i);
    }
    return "..." + safe.substr(from);
}

std::string markdown_inline(std::string_view text) {
    std::string out;
    for (char c : terminal_safe_line(text)) {
        switch (c) {
            case '\\':
            case '`':
            case '*':
            case '_':
            case '[':
            case ']':
            case '<':
            case '>':
            case '|':
            case '#':
            case '~':
            case '&':
            case '$':
                out += '\\';
                break;
            default:
                break;
        }
        out += c;
    }
    return out;
}

std::string markdown_code_span(std::string_view text) {
    const std::string line = terminal_safe_line(text);
    const std::string fence(longest_backtick_run(line) + 1, '`');
    // one space of padding on each side is removed again by the renderer, and lets the text
    // start or end with a backtick
    return fence + " " + line + " " + fence;
}

std::string markdown_fenced_block(std::string_view text, std::string_view indent) {
    std::string body = terminal_safe(text);
    trim_trailing_blanks(body);
    const std::string fence(std::max<size_t>(3, longest_backtick_run(body) + 1), '`');
    std::string out = std::string(indent) + fence + "\n";
    size_t start = 0;
    while (start < body.size()) {
        size_t end = body.find('\n', start);
        if (end == std::string::npos) end = body.size();
        if (end > start) out += std::string(indent) + body.substr(start, end - start);
        out += "\n";
        start = end + 1;
    }
    out += std::string(indent) + fence + "\n";
    return out;
}

std::string html_text(std::string_view text) {
    std::string out;
    for (char c : terminal_safe(text)) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

}  // namespace trainopt
