#include "harness/cli_error.h"

#include <cstdio>

#include "scoring/untrusted_text.h"

namespace trainopt {

std::string safe_indented(std::string_view text) {
    std::string out = terminal_safe(text);
    for (size_t at = out.find('\n'); at != std::string::npos; at = out.find('\n', at + 1))
        out.insert(at + 1, "    ");
    return out;
}

int fail(const std::string& message) {
    fprintf(stderr, "trainopt: error: %s\n", safe_indented(message).c_str());
    return kExitError;
}

}  // namespace trainopt
