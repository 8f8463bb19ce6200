// One SHA-256 for a whole directory tree the harness does not trust: a submission's scratch tree
// after intake, whose digest is the build cache's account of what a build compiles
// (harness/build_cache.h). The tree is walked through directory descriptors with no link
// followed and no other mount entered; a link, a FIFO, a device, a socket or a tree beyond the
// limits is an error naming the entry, never a hang, a read outside the tree or a partial digest.
// Nothing here writes into the tree.
#pragma once

#include <cstddef>
#include <string>

#include "contract/result.h"

namespace trainopt {

struct TreeDigestLimits {
    size_t max_entries = 20000;                  // files and directories
    size_t max_file_bytes = (size_t)64 << 20;    // one file
    size_t max_total_bytes = (size_t)512 << 20;  // all files
    int max_depth = 32;                          // directories below the root
    double deadline_seconds = 60;                // the whole walk
};

// SHA-256 (64 hex digits) of the tree under `root`, root excluded: every directory and regular
// file in a fixed order (sorted names, depth first), each recorded with its path, kind,
// permission bits and, for a file, its size and content SHA-256. Two trees have the same digest
// exactly when they hold the same paths with the same kinds, modes and contents; owners and
// times are left out. Fails on any entry that is not a directory or a regular file, and on a
// tree beyond `limits`.
Result<std::string> digest_tree(const std::string& root, const TreeDigestLimits& limits = {});

}  // namespace trainopt
