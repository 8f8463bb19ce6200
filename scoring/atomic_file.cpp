#include "scoring/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace trainopt {

namespace fs = std::filesystem;

Status write_file_atomic(const std::string& path, const std::string& content) {
    fs::path target(path);
    std::error_code ec;
    if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
    // A fresh temporary name created exclusively (mkstemp): nothing planted in the directory,
    // a link least of all, is ever opened or truncated.
    std::string tmp = path + ".tmp.XXXXXX";
    int fd = mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0644) != 0) {
        if (fd >= 0) {
            close(fd);
            unlink(tmp.c_str());
        }
        return failure("cannot write a temporary file next to " + path);
    }
    size_t written = 0;
    while (written < content.size()) {
        ssize_t n = write(fd, content.data() + written, content.size() - written);
        if (n <= 0) {
            close(fd);
            unlink(tmp.c_str());
            return failure("short write to " + tmp);
        }
        written += n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
        unlink(tmp.c_str());
        return failure("cannot replace " + path);
    }
    return {};
}

}  // namespace trainopt
