// Reading files from trees the harness does not trust: a run's outputs and a submission's build
// tree. Every read here resolves its name beneath a directory without following any link
// (symlinks, magic links, other mounts), accepts only a regular file, refuses it above a size
// the caller states before anything is read, and gives up after a deadline. Nothing here writes
// into an untrusted tree.
#pragma once

#include <cstddef>
#include <string>

#include "contract/result.h"

namespace trainopt {

// A file descriptor closed when it goes out of scope, unless released.
struct UniqueFd {
    int fd = -1;
    explicit UniqueFd(int f) : fd(f) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();
    int release() {
        const int f = fd;
        fd = -1;
        return f;
    }
};

// CLOCK_MONOTONIC in seconds: the deadlines of reads and walks of untrusted trees.
double monotonic_seconds();

struct SafeReadLimits {
    size_t max_bytes = 0;          // a larger file is refused before it is read
    double deadline_seconds = 10;  // reading stops with an error after this long
};

// The contents of DIR/RELATIVE. Fails, naming RELATIVE, when it is missing, is a link or lies
// beyond one, is not a regular file (FIFO, device, socket, directory), is larger than the limit
// or takes longer than the deadline.
Result<std::string> read_file_beneath(const std::string& dir, const std::string& relative,
                                      const SafeReadLimits& limits);

// The contents of the file `fd`, which the caller opened (without following links) and checked
// to be a regular file: read within the same size limit and deadline; `name` names it in errors.
// For callers that reach files through directory descriptors (harness/tree_digest.h,
// harness/build_cache.h).
Result<std::string> read_open_file(int fd, const std::string& name, const SafeReadLimits& limits);

// Copies DIR/RELATIVE, read as above, to DEST (a new file in a directory the harness owns;
// an existing DEST is an error, so nothing is ever truncated through a name).
Status copy_file_beneath(const std::string& dir, const std::string& relative,
                         const SafeReadLimits& limits, const std::string& dest, int mode);

}  // namespace trainopt
