#include "harness/safe_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace trainopt {

UniqueFd::~UniqueFd() {
    if (fd >= 0) close(fd);
}

double monotonic_seconds() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

namespace {

constexpr int kReadFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;

// Opens RELATIVE beneath the directory `dir_fd` with no link followed anywhere on the way.
// openat2 does it in one call; kernels without it get a walk of O_NOFOLLOW opens.
int open_beneath(int dir_fd, const std::string& relative) {
    open_how how{};
    how.flags = kReadFlags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    int fd = (int)syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof(how));
    if (fd >= 0 || errno != ENOSYS) return fd;

    int current = dup(dir_fd);
    size_t begin = 0;
    while (current >= 0) {
        size_t slash = relative.find('/', begin);
        std::string part = relative.substr(begin, slash - begin);
        if (part.empty() || part == "." || part == "..") {
            close(current);
            errno = EXDEV;
            return -1;
        }
        const bool last = slash == std::string::npos;
        int next = openat(current, part.c_str(),
                          last ? kReadFlags : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(current);
        if (last || next < 0) return next;
        current = next;
        begin = slash + 1;
    }
    return -1;
}

std::string describe_mode(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a link";
    return "not a regular file";
}

// Opens RELATIVE beneath DIR and checks it is a regular file within the size limit. The
// descriptor is the caller's to close.
Result<int> open_checked(const std::string& dir, const std::string& relative,
                         const SafeReadLimits& limits) {
    UniqueFd dir_fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.fd < 0)
        return failure(relative + ": its directory cannot be opened (" + strerror(errno) + ")");
    int fd = open_beneath(dir_fd.fd, relative);
    if (fd < 0) {
        if (errno == ENOENT) return failure(relative + " is missing");
        if (errno == ELOOP || errno == EXDEV)
            return failure(relative + " is a link or lies beyond one: links are not followed");
        return failure(relative + " cannot be opened (" + strerror(errno) + ")");
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return failure(relative + " is " + describe_mode(st.st_mode) + ", not a regular file");
    }
    if ((size_t)st.st_size > limits.max_bytes) {
        close(fd);
        return failure(relative + " is " + std::to_string(st.st_size) + " bytes, more than the " +
                       std::to_string(limits.max_bytes) + " bytes allowed");
    }
    return fd;
}

// Reads at most limits.max_bytes from `fd`; a file that grows past the limit or a read that
// outlasts the deadline is an error.
Result<std::string> read_bounded(int fd, const std::string& relative,
                                 const SafeReadLimits& limits) {
    const double deadline = monotonic_seconds() + limits.deadline_seconds;
    std::string out;
    struct stat st;
    if (fstat(fd, &st) == 0) out.reserve((size_t)st.st_size);
    char buf[1 << 16];
    while (true) {
        if (monotonic_seconds() > deadline) {
            return failure(relative + " could not be read within " +
                           std::to_string((int)limits.deadline_seconds) + " s");
        }
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) return failure(relative + " cannot be read (" + strerror(errno) + ")");
        if (n == 0) return out;
        if (out.size() + (size_t)n > limits.max_bytes) {
            return failure(relative + " grew past the " + std::to_string(limits.max_bytes) +
                           " bytes allowed");
        }
        out.append(buf, (size_t)n);
    }
}

}  // namespace

Result<std::string> read_file_beneath(const std::string& dir, const std::string& relative,
                                      const SafeReadLimits& limits) {
    Result<int> opened = open_checked(dir, relative, limits);
    if (!opened) return failure(opened.error());
    UniqueFd fd(*opened);
    return read_bounded(fd.fd, relative, limits);
}

Result<std::string> read_open_file(int fd, const std::string& name, const SafeReadLimits& limits) {
    return read_bounded(fd, name, limits);
}

Status copy_file_beneath(const std::string& dir, const std::string& relative,
                         const SafeReadLimits& limits, const std::string& dest, int mode) {
    Result<std::string> content = read_file_beneath(dir, relative, limits);
    if (!content) return failure(content.error());
    UniqueFd out(open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (out.fd < 0) return failure("cannot create " + dest + ": " + strerror(errno));
    size_t written = 0;
    while (written < content->size()) {
        ssize_t n = write(out.fd, content->data() + written, content->size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return failure("cannot write " + dest + ": " + strerror(errno));
        written += (size_t)n;
    }
    if (fchmod(out.fd, mode) != 0) return failure("cannot set the mode of " + dest);
    return {};
}

}  // namespace trainopt
