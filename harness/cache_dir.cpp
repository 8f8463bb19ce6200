#include "harness/cache_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include "harness/safe_file.h"
#include "scoring/spec_hash.h"  // is_sha256_hex
#include "tasks/sha256.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

// A temporary or evicted directory this old was left by a trainopt that was killed mid-write.
constexpr int64_t kStaleSeconds = 3600;
constexpr const char* kTemporaryPrefix = ".tmp-";
constexpr const char* kEvictedPrefix = ".evict-";
constexpr int kMaxRemoveDepth = 4;  // entries hold a few files; deeper is not ours to walk

std::string random_hex(size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    size_t got = 0;
    while (got < bytes) {
        ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    // without getrandom, the pid and time still keep concurrent trainopts apart
    std::string out =
        got == bytes ? "" : std::to_string(getpid()) + "-" + std::to_string(time(nullptr)) + "-";
    static const char* digits = "0123456789abcdef";
    for (unsigned char c : raw) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

std::string octal_mode(mode_t mode) {
    char buf[16];
    snprintf(buf, sizeof(buf), "%04o", (unsigned)(mode & 07777));
    return buf;
}

// ---- the cache directory ----

// Creates the missing directories of `dir`, each with mode 0700. `created`: the last one was.
Status create_missing(const fs::path& dir, bool& created) {
    created = false;
    fs::path partial;
    for (const fs::path& part : dir) {
        partial /= part;
        struct stat st;
        if (lstat(partial.c_str(), &st) == 0) continue;
        if (errno != ENOENT)
            return failure("cannot examine " + partial.string() + ": " + strerror(errno));
        if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST)
            return failure("cannot create " + partial.string() + ": " + strerror(errno));
        created = partial == dir;
    }
    return {};
}

// Fails unless `p` can be changed only by this user or root: owned by one of them and, unless it
// is a link or a sticky directory (such as /tmp, where no one else can rename what is ours), not
// writable by its group or everyone.
Status check_component(const fs::path& p, const std::string& shown) {
    struct stat st;
    if (lstat(p.c_str(), &st) != 0)
        return failure("cannot examine " + p.string() + ": " + strerror(errno));
    const std::string where = shown + " lies in " + p.string();
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        return failure(where + ", which is owned by uid " + std::to_string(st.st_uid) +
                       ": someone else could replace the cache");
    }
    const bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !S_ISLNK(st.st_mode) && !sticky_dir) {
        return failure(where + ", which others can write (mode " + octal_mode(st.st_mode) +
                       "): someone else could replace the cache");
    }
    return {};
}

// Fails unless everything the cache's path passes through can be changed only by this user or
// root: every directory and link above it as written, and every directory above where those
// links lead. Otherwise someone could move the cache away, or point its path elsewhere, and put
// their own in its place (or have this user create and prune directories there). The parts
// that do not exist yet are created by this user afterwards.
Status check_path(const fs::path& path, const std::string& shown) {
    fs::path partial, existing;
    for (const fs::path& part : path.parent_path()) {
        partial /= part;
        struct stat st;
        if (lstat(partial.c_str(), &st) != 0) {
            if (errno == ENOENT) break;
            return failure("cannot examine " + partial.string() + ": " + strerror(errno));
        }
        if (Status trusted = check_component(partial, shown); !trusted) return trusted;
        existing = partial;
    }
    if (existing.empty()) return {};
    char* real = realpath(existing.c_str(), nullptr);
    if (real == nullptr)
        return failure("cannot resolve " + existing.string() + ": " + strerror(errno));
    const fs::path resolved = real;
    free(real);
    for (fs::path p = resolved; !p.empty(); p = p.parent_path()) {
        if (Status trusted = check_component(p, shown); !trusted) return trusted;
        if (p == p.root_path()) break;
    }
    return {};
}
// ---- inside the cache, always beneath a checked descriptor ----

// Writes a new file NAME in the directory `dir_fd` (never through an existing name).
Status write_new_file(int dir_fd, const std::string& name, const std::string& content, int mode) {
    UniqueFd fd(
        openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (fd.fd < 0) return failure("cannot create " + name + ": " + strerror(errno));
    size_t written = 0;
    while (written < content.size()) {
        ssize_t n = write(fd.fd, content.data() + written, content.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return failure("cannot write " + name + ": " + strerror(errno));
        written += (size_t)n;
    }
    if (fchmod(fd.fd, mode) != 0 || fsync(fd.fd) != 0)
        return failure("cannot finish " + name + ": " + strerror(errno));
    return {};
}

// The names in the directory `dir_fd`, without "." and "..".
std::vector<std::string> list_names(int dir_fd) {
    std::vector<std::string> names;
    int listing = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (listing < 0) return names;
    DIR* dir = fdopendir(listing);
    if (dir == nullptr) {
        close(listing);
        return names;
    }
    while (dirent* e = readdir(dir)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    closedir(dir);
    return names;
}

// Removes NAME of the directory `dir_fd` and, if it is a directory, what it holds, with no link
// followed (a link is removed itself). Best effort: another trainopt may be removing it too.
void remove_at(int dir_fd, const std::string& name, int depth = 0) {
    struct stat st;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        unlinkat(dir_fd, name.c_str(), 0);
        return;
    }
    if (depth < kMaxRemoveDepth) {
        UniqueFd sub(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.fd >= 0) {
            for (const std::string& child : list_names(sub.fd)) remove_at(sub.fd, child, depth + 1);
        }
    }
    unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR);
}

// The total size of the regular files in the entry NAME; fails when NAME is not a directory
// holding a manifest (not an entry of the cache's).
Result<size_t> entry_bytes(int cache_fd, const std::string& name) {
    UniqueFd entry(openat(cache_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (entry.fd < 0) return failure(name + " cannot be opened");
    struct stat manifest;
    if (fstatat(entry.fd, kCacheManifestName, &manifest, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(manifest.st_mode))
        return failure(name + " holds no manifest");
    size_t total = 0;
    for (const std::string& child : list_names(entry.fd)) {
        struct stat st;
        if (fstatat(entry.fd, child.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            total += (size_t)st.st_size;
    }
    return total;
}

}  // namespace

Result<std::string> default_cache_dir(const std::string& leaf, const std::string& option) {
    const char* xdg = getenv("XDG_CACHE_HOME");
    if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/trainopt/" + leaf;
    const char* home = getenv("HOME");
    if (home != nullptr && home[0] == '/') return std::string(home) + "/.cache/trainopt/" + leaf;
    return failure("neither XDG_CACHE_HOME nor HOME is an absolute path: choose a directory with " +
                   option);
}

Status check_ours(const struct stat& st, const std::string& what) {
    if (st.st_uid != geteuid()) {
        return failure(what + " is owned by uid " + std::to_string(st.st_uid) +
                       ", not by this user (uid " + std::to_string(geteuid()) + ")");
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return failure(what + " is writable by its group or by everyone (mode " +
                       octal_mode(st.st_mode) + ")");
    return {};
}

CacheDir::CacheDir(CacheDir&& other) noexcept : path(std::move(other.path)), fd(other.fd) {
    other.fd = -1;
}

CacheDir& CacheDir::operator=(CacheDir&& other) noexcept {
    if (this != &other) {
        if (fd >= 0) close(fd);
        path = std::move(other.path);
        fd = other.fd;
        other.fd = -1;
    }
    return *this;
}

CacheDir::~CacheDir() {
    if (fd >= 0) close(fd);
}

Result<CacheDir> open_cache_dir(const std::string& dir, const std::string& what) {
    if (dir.empty()) return failure(what + "'s path is empty");
    std::error_code ec;
    fs::path path = fs::absolute(dir, ec).lexically_normal();
    if (ec) return failure(what + " " + dir + " has no absolute path: " + ec.message());
    if (path.filename().empty()) path = path.parent_path();  // a trailing slash
    const std::string shown = what + " " + path.string();
    // checked before anything is created, so nothing is made where others could redirect it
    if (Status trusted = check_path(path, shown); !trusted) return failure(trusted.error());
    bool created = false;
    if (Status made = create_missing(path, created); !made)
        return failure(shown + " cannot be created: " + made.error());
    struct stat named;
    if (lstat(path.c_str(), &named) != 0)
        return failure(shown + " cannot be examined: " + strerror(errno));
    if (S_ISLNK(named.st_mode))
        return failure(shown + " is a symbolic link: links are not followed");
    if (!S_ISDIR(named.st_mode)) return failure(shown + " is not a directory");
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.fd < 0) return failure(shown + " cannot be opened: " + strerror(errno));
    struct stat st;
    if (fstat(fd.fd, &st) != 0 || st.st_dev != named.st_dev || st.st_ino != named.st_ino)
        return failure(shown + " changed while it was opened");
    if (created && fchmod(fd.fd, 0700) == 0) st.st_mode = (st.st_mode & ~07777) | 0700;
    if (Status ours = check_ours(st, shown); !ours) return failure(ours.error());
    CacheDir cache;
    cache.path = path.string();
    cache.fd = fd.release();
    return cache;
}

Result<int> open_cache_entry(int cache_fd, const std::string& key) {
    const int fd = openat(cache_fd, key.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return -1;
        if (errno == ELOOP || errno == ENOTDIR) return failure("it is a link or a file");
        return failure(std::string("it cannot be opened (") + strerror(errno) + ")");
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return failure("it cannot be examined");
    }
    if (Status ours = check_ours(st, "its directory"); !ours) {
        close(fd);
        return failure(ours.error());
    }
    return fd;
}

Result<std::string> read_cache_file(int dir_fd, const std::string& name, size_t max_bytes) {
    UniqueFd fd(
        openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (fd.fd < 0) {
        if (errno == ENOENT) return failure(name + " is missing");
        if (errno == ELOOP) return failure(name + " is a link");
        return failure(name + " cannot be opened (" + strerror(errno) + ")");
    }
    struct stat st;
    if (fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode))
        return failure(name + " is not a regular file");
    if (Status ours = check_ours(st, name); !ours) return failure(ours.error());
    if ((size_t)st.st_size > max_bytes) {
        return failure(name + " is " + std::to_string(st.st_size) + " bytes, more than the " +
                       std::to_string(max_bytes) + " allowed");
    }
    return read_open_file(fd.fd, name, {max_bytes, 60});
}

Result<bool> put_cache_entry(const CacheDir& cache, const std::string& key,
                             const std::vector<CacheFile>& files) {
    if (!is_sha256_hex(key)) return failure("not a cache key: " + key);
    const std::string temporary = kTemporaryPrefix + random_hex(8);
    if (mkdirat(cache.fd, temporary.c_str(), 0700) != 0)
        return failure("cannot create " + temporary + " in " + cache.path + ": " + strerror(errno));
    Status written = [&]() -> Status {
        UniqueFd dir(
            openat(cache.fd, temporary.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (dir.fd < 0) return failure("cannot open " + temporary + ": " + strerror(errno));
        if (fchmod(dir.fd, 0700) != 0) return failure("cannot set the mode of " + temporary);
        for (const CacheFile& file : files) {
            if (Status w = write_new_file(dir.fd, file.name, file.content, 0600); !w) return w;
        }
        if (fsync(dir.fd) != 0) return failure("cannot sync " + temporary);
        return {};
    }();
    if (!written) {
        remove_at(cache.fd, temporary);
        return failure("cannot write the entry in " + cache.path + ": " + written.error());
    }
    // the entry appears whole or not at all; renaming onto an entry that exists fails, and that
    // entry (another trainopt's of the same key) is kept
    bool stored = true;
    if (renameat(cache.fd, temporary.c_str(), cache.fd, key.c_str()) != 0) {
        const int err = errno;
        remove_at(cache.fd, temporary);
        if (err != EEXIST && err != ENOTEMPTY)
            return failure("cannot put the entry in place in " + cache.path + ": " + strerror(err));
        stored = false;
    }
    fsync(cache.fd);
    return stored;
}

void evict_cache_entry(int cache_fd, const std::string& name) {
    const std::string grave = kEvictedPrefix + random_hex(8);
    if (renameat(cache_fd, name.c_str(), cache_fd, grave.c_str()) != 0) return;
    remove_at(cache_fd, grave);
}

void prune_cache_dir(const CacheDir& cache, size_t max_entries, size_t max_bytes) {
    struct Listed {
        std::string name;
        timespec used;
        size_t bytes;
    };
    std::vector<Listed> entries;
    const time_t now = time(nullptr);
    for (const std::string& name : list_names(cache.fd)) {
        struct stat st;
        if (fstatat(cache.fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (starts_with(name, kTemporaryPrefix) || starts_with(name, kEvictedPrefix)) {
            if (now - st.st_mtim.tv_sec > kStaleSeconds) remove_at(cache.fd, name);
            continue;
        }
        // only entries are counted and evicted: whatever else is there is not the cache's (a
        // damaged entry is removed when it is looked up)
        if (!is_sha256_hex(name) || !S_ISDIR(st.st_mode)) continue;
        Result<size_t> bytes = entry_bytes(cache.fd, name);
        if (bytes) entries.push_back({name, st.st_mtim, *bytes});
    }
    std::sort(entries.begin(), entries.end(), [](const Listed& a, const Listed& b) {
        if (a.used.tv_sec != b.used.tv_sec) return a.used.tv_sec > b.used.tv_sec;
        return a.used.tv_nsec > b.used.tv_nsec;
    });
    size_t kept = 0, bytes = 0;
    for (const Listed& e : entries) {
        if (kept < max_entries && bytes + e.bytes <= max_bytes) {
            kept++;
            bytes += e.bytes;
        } else {
            evict_cache_entry(cache.fd, e.name);
        }
    }
}

EntryLookup read_cache_entry(const CacheDir& cache, const std::string& key,
                             const std::function<Status(int entry_fd)>& read) {
    EntryLookup out;
    struct stat before;
    if (fstatat(cache.fd, key.c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) return out;  // a miss
    Status accepted = [&]() -> Status {
        Result<int> opened = open_cache_entry(cache.fd, key);
        if (!opened) return failure(opened.error());
        if (*opened < 0) return failure("it vanished");
        UniqueFd entry(*opened);
        return read(entry.fd);
    }();
    if (accepted) {
        out.hit = true;
        return out;
    }
    // Another trainopt may have evicted the entry while it was read (its files vanish) or
    // replaced it: then this is a miss, and what is there now is not this lookup's to remove.
    struct stat now;
    if (fstatat(cache.fd, key.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
        now.st_dev != before.st_dev || now.st_ino != before.st_ino)
        return out;
    out.distrusted = accepted.error();
    evict_cache_entry(cache.fd, key);
    return out;
}

std::string cache_key(const std::string& header,
                      const std::vector<std::pair<std::string, std::string>>& parts) {
    std::string text = header + "\n";
    for (const auto& [name, value] : parts)
        text += name + " " + std::to_string(value.size()) + ":" + value + "\n";
    return sha256_hex(text);
}

bool is_plain_utc_date(const std::string& date) {
    return !date.empty() && date.size() <= 32 && std::all_of(date.begin(), date.end(), [](char c) {
        return (c >= '0' && c <= '9') || c == '-' || c == ':' || c == 'T' || c == 'Z';
    });
}

void touch_cache_entry(const CacheDir& cache, const std::string& key) {
    utimensat(cache.fd, key.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
}

}  // namespace trainopt
