#include "harness/tree_digest.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "harness/safe_file.h"
#include "tasks/sha256.h"

namespace trainopt {

namespace {

std::string kind_of(mode_t mode) {
    if (S_ISLNK(mode)) return "a link (links are not followed)";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file or directory";
}

// The walk's running state: the limits, what was seen so far, and the listing being hashed.
struct Walk {
    explicit Walk(const TreeDigestLimits& l) : limits(l) {}
    const TreeDigestLimits& limits;
    double deadline = 0;
    dev_t device = 0;  // the root's file system: the walk enters no other mount
    size_t entries = 0;
    size_t bytes = 0;
    std::string listing;
};

// One line of the listing: kind, mode, (size and hash,) then the path prefixed with its length,
// so that no path, whatever bytes it holds, can pass for another line.
void record(Walk& walk, const std::string& head, const std::string& path) {
    walk.listing += head + " " + std::to_string(path.size()) + ":" + path + "\n";
}

std::string octal_mode(mode_t mode) {
    char buf[16];
    snprintf(buf, sizeof(buf), "%04o", (unsigned)(mode & 07777));
    return buf;
}

// The names in the directory `dir_fd`, sorted bytewise; at most what the entry limit leaves.
Result<std::vector<std::string>> sorted_names(Walk& walk, int dir_fd, const std::string& path) {
    int listing_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (listing_fd < 0) return failure(path + ": cannot be listed (" + strerror(errno) + ")");
    DIR* dir = fdopendir(listing_fd);
    if (dir == nullptr) {
        close(listing_fd);
        return failure(path + ": cannot be listed (" + strerror(errno) + ")");
    }
    std::vector<std::string> names;
    while (dirent* entry = readdir(dir)) {
        const std::string name = entry->d_name;
        if (name == "." || name == "..") continue;
        if (walk.entries + names.size() >= walk.limits.max_entries) {
            closedir(dir);
            return failure("the tree holds more than " + std::to_string(walk.limits.max_entries) +
                           " files and directories");
        }
        names.push_back(name);
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
}

// Reads the regular file `fd` (`st` its fstat) within the limits and returns its SHA-256.
Result<std::string> hash_file(Walk& walk, int fd, const struct stat& st, const std::string& path) {
    if ((size_t)st.st_size > walk.limits.max_file_bytes) {
        return failure(path + " is " + std::to_string(st.st_size) + " bytes, more than the " +
                       std::to_string(walk.limits.max_file_bytes) + " allowed");
    }
    if (walk.bytes + (size_t)st.st_size > walk.limits.max_total_bytes) {
        return failure("the tree's files hold more than " +
                       std::to_string(walk.limits.max_total_bytes) + " bytes");
    }
    const double left = walk.deadline - monotonic_seconds();
    if (left <= 0)
        return failure("the tree could not be read within its deadline (at " + path + ")");
    // the limit is the size fstat gave: a file that grows while it is read is an error
    Result<std::string> content = read_open_file(fd, path, {(size_t)st.st_size, left});
    if (!content) return failure(content.error());
    if (content->size() != (size_t)st.st_size) return failure(path + " shrank while it was read");
    walk.bytes += content->size();
    return sha256_hex(*content);
}

Status walk_directory(Walk& walk, int dir_fd, const std::string& prefix, int depth);

// One entry of the directory `dir_fd`: opened without following a link, checked to be what
// fstatat said it was (nothing swapped in between), recorded, and descended into.
Status walk_entry(Walk& walk, int dir_fd, const std::string& name, const std::string& path,
                  int depth) {
    if (monotonic_seconds() > walk.deadline)
        return failure("the tree could not be read within its deadline (at " + path + ")");
    struct stat seen;
    if (fstatat(dir_fd, name.c_str(), &seen, AT_SYMLINK_NOFOLLOW) != 0)
        return failure(path + " cannot be examined (" + strerror(errno) + ")");
    const bool is_dir = S_ISDIR(seen.st_mode);
    if (!is_dir && !S_ISREG(seen.st_mode)) return failure(path + " is " + kind_of(seen.st_mode));
    if (seen.st_dev != walk.device) return failure(path + " is on another file system (a mount)");
    if (is_dir && depth + 1 > walk.limits.max_depth) {
        return failure(path + " lies more than " + std::to_string(walk.limits.max_depth) +
                       " directories deep");
    }
    const int flags = is_dir ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                             : O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    UniqueFd fd(openat(dir_fd, name.c_str(), flags));
    if (fd.fd < 0) {
        if (errno == ELOOP) return failure(path + " is a link (links are not followed)");
        return failure(path + " cannot be opened (" + strerror(errno) + ")");
    }
    struct stat st;
    if (fstat(fd.fd, &st) != 0 || st.st_dev != seen.st_dev || st.st_ino != seen.st_ino ||
        (st.st_mode & S_IFMT) != (seen.st_mode & S_IFMT))
        return failure(path + " changed while the tree was read");
    walk.entries++;
    if (is_dir) {
        record(walk, "d " + octal_mode(st.st_mode), path);
        return walk_directory(walk, fd.fd, path + "/", depth + 1);
    }
    Result<std::string> hash = hash_file(walk, fd.fd, st, path);
    if (!hash) return failure(hash.error());
    record(walk, "f " + octal_mode(st.st_mode) + " " + std::to_string(st.st_size) + " " + *hash,
           path);
    return {};
}

Status walk_directory(Walk& walk, int dir_fd, const std::string& prefix, int depth) {
    Result<std::vector<std::string>> names =
        sorted_names(walk, dir_fd, prefix.empty() ? "." : prefix);
    if (!names) return failure(names.error());
    for (const std::string& name : *names) {
        if (Status done = walk_entry(walk, dir_fd, name, prefix + name, depth); !done) return done;
    }
    return {};
}

}  // namespace

Result<std::string> digest_tree(const std::string& root, const TreeDigestLimits& limits) {
    UniqueFd root_fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (root_fd.fd < 0) return failure("cannot open the tree " + root + ": " + strerror(errno));
    struct stat st;
    if (fstat(root_fd.fd, &st) != 0) return failure("cannot examine the tree " + root);
    Walk walk(limits);
    walk.deadline = monotonic_seconds() + limits.deadline_seconds;
    walk.device = st.st_dev;
    walk.listing = "trainopt tree digest 1\n";
    if (Status walked = walk_directory(walk, root_fd.fd, "", 0); !walked)
        return failure(walked.error());
    return sha256_hex(walk.listing);
}

}  // namespace trainopt
