// Writing a file so that readers never see half of it: the reports are rewritten after every
// repetition while someone may be reading them.
#pragma once

#include <string>

namespace trainopt {

// Writes via a temporary file in the same directory and rename(), so readers never see a
// half-written file and an interruption leaves the previous version intact. Creates the parent
// directories. On failure returns false with error set and leaves no temporary file behind.
bool write_file_atomic(const std::string& path, const std::string& content, std::string& error);

}  // namespace trainopt
