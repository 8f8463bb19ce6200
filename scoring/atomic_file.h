// Writing a file so that readers never see half of it: the reports are rewritten after every
// repetition while someone may be reading them.
#pragma once

#include <string>

#include "contract/result.h"

namespace trainopt {

// Writes via a temporary file in the same directory and rename(), so readers never see a
// half-written file and an interruption leaves the previous version intact. Creates the parent
// directories. A failure leaves no temporary file behind.
Status write_file_atomic(const std::string& path, const std::string& content);

}  // namespace trainopt
