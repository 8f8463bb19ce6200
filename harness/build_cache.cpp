#include "harness/build_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "harness/process.h"
#include "harness/safe_file.h"
#include "scoring/report_format.h"
#include "scoring/spec_hash.h"  // is_sha256_hex
#include "tasks/sha256.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr const char* kBinaryName = "trainopt-train";
constexpr const char* kManifestName = "manifest.json";
constexpr size_t kMaxManifestBytes = (size_t)64 << 10;
// A temporary or evicted directory this old was left by a trainopt that was killed mid-write.
constexpr int64_t kStaleSeconds = 3600;
constexpr const char* kTemporaryPrefix = ".tmp-";
constexpr const char* kEvictedPrefix = ".evict-";
constexpr int kMaxRemoveDepth = 4;  // entries hold two files; deeper is not ours to walk

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

std::string short_key(const std::string& key) {
    return key.substr(0, 12);
}

bool starts_with(const std::string& s, const char* prefix) {
    return s.rfind(prefix, 0) == 0;
}

std::string octal_mode(mode_t mode) {
    char buf[16];
    snprintf(buf, sizeof(buf), "%04o", (unsigned)(mode & 07777));
    return buf;
}

// Fails unless `st` belongs to this user and no one else may write it.
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
    const std::string where = "the build cache " + shown + " lies in " + p.string();
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

// ---- reading and writing inside the cache, always beneath a checked descriptor ----

// A regular file NAME of the directory `dir_fd`: not a link, ours, at most `max_bytes`.
Result<std::string> read_ours(int dir_fd, const std::string& name, size_t max_bytes) {
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

// Takes NAME out of the cache at once (renamed to a hidden name no lookup matches), then
// deletes it. When NAME is gone already, another trainopt took it.
void evict(int cache_fd, const std::string& name) {
    const std::string grave = kEvictedPrefix + random_hex(8);
    if (renameat(cache_fd, name.c_str(), cache_fd, grave.c_str()) != 0) return;
    remove_at(cache_fd, grave);
}

// ---- entries ----

std::string manifest_text(const CacheEntry& e) {
    nlohmann::json j = {{"format", kBuildCacheFormat},    {"key", e.key},
                        {"binary", kBinaryName},          {"binary_sha256", e.binary_sha256},
                        {"binary_bytes", e.binary_bytes}, {"created_at", e.created_at},
                        {"created_unix", e.created_unix}, {"build_seconds", e.build_seconds}};
    return j.dump(2) + "\n";
}

// Parses a manifest and checks it describes an entry of this format for `key`.
Result<CacheEntry> parse_manifest(const std::string& text, const std::string& key) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return failure("manifest.json is not JSON");
    CacheEntry e;
    try {
        if (j.at("format").get<int>() != kBuildCacheFormat)
            return failure("manifest.json is of another format");
        e.key = j.at("key").get<std::string>();
        e.binary_sha256 = j.at("binary_sha256").get<std::string>();
        e.binary_bytes = j.at("binary_bytes").get<size_t>();
        e.created_at = j.at("created_at").get<std::string>();
        e.created_unix = j.at("created_unix").get<int64_t>();
        e.build_seconds = j.at("build_seconds").get<double>();
    } catch (const std::exception&) {
        return failure("manifest.json lacks a field or has one of the wrong type");
    }
    if (e.key != key) return failure("manifest.json is for another key");
    if (!is_sha256_hex(e.binary_sha256)) return failure("manifest.json holds no binary SHA-256");
    if (e.binary_bytes == 0 || e.binary_bytes > kMaxTrainerBytes)
        return failure("manifest.json gives an impossible size");
    // the date reaches the log and the report: digits and ISO 8601's separators only
    const bool plain_date =
        !e.created_at.empty() && e.created_at.size() <= 32 &&
        std::all_of(e.created_at.begin(), e.created_at.end(), [](char c) {
            return (c >= '0' && c <= '9') || c == '-' || c == ':' || c == 'T' || c == 'Z';
        });
    if (!plain_date || !(e.build_seconds >= 0 && e.build_seconds < 1e7))
        return failure("manifest.json gives an impossible date or build time");
    return e;
}

struct LoadedEntry {
    bool missing = false;
    CacheEntry entry;
    std::string binary;
};

// The entry of `key` with its binary, every check passed; `missing` when there is none. Fails,
// saying why, when there is one that must not be trusted.
Result<LoadedEntry> load_entry(int cache_fd, const std::string& key) {
    LoadedEntry loaded;
    UniqueFd entry(openat(cache_fd, key.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (entry.fd < 0) {
        if (errno == ENOENT) {
            loaded.missing = true;
            return loaded;
        }
        if (errno == ELOOP || errno == ENOTDIR) return failure("it is a link or a file");
        return failure(std::string("it cannot be opened (") + strerror(errno) + ")");
    }
    struct stat st;
    if (fstat(entry.fd, &st) != 0) return failure("it cannot be examined");
    if (Status ours = check_ours(st, "its directory"); !ours) return failure(ours.error());
    Result<std::string> text = read_ours(entry.fd, kManifestName, kMaxManifestBytes);
    if (!text) return failure(text.error());
    Result<CacheEntry> manifest = parse_manifest(*text, key);
    if (!manifest) return failure(manifest.error());
    Result<std::string> binary = read_ours(entry.fd, kBinaryName, manifest->binary_bytes);
    if (!binary) return failure(binary.error());
    if (binary->size() != manifest->binary_bytes) {
        return failure("the binary is " + std::to_string(binary->size()) +
                       " bytes, its manifest says " + std::to_string(manifest->binary_bytes));
    }
    const std::string sha = sha256_hex(*binary);
    if (sha != manifest->binary_sha256) {
        return failure("the binary's SHA-256 is " + sha + ", its manifest says " +
                       manifest->binary_sha256);
    }
    loaded.entry = *manifest;
    loaded.binary = std::move(*binary);
    return loaded;
}

// The total size of the regular files in the entry NAME; fails when NAME is not a directory
// holding a manifest (not an entry of the cache's).
Result<size_t> entry_bytes(int cache_fd, const std::string& name) {
    UniqueFd entry(openat(cache_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (entry.fd < 0) return failure(name + " cannot be opened");
    struct stat manifest;
    if (fstatat(entry.fd, kManifestName, &manifest, AT_SYMLINK_NOFOLLOW) != 0 ||
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

// ---- the cache directory ----

BuildCache::BuildCache(BuildCache&& other) noexcept : path(std::move(other.path)), fd(other.fd) {
    other.fd = -1;
}

BuildCache& BuildCache::operator=(BuildCache&& other) noexcept {
    if (this != &other) {
        if (fd >= 0) close(fd);
        path = std::move(other.path);
        fd = other.fd;
        other.fd = -1;
    }
    return *this;
}

BuildCache::~BuildCache() {
    if (fd >= 0) close(fd);
}

Result<std::string> default_build_cache_dir() {
    const char* xdg = getenv("XDG_CACHE_HOME");
    if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/trainopt/builds";
    const char* home = getenv("HOME");
    if (home != nullptr && home[0] == '/') return std::string(home) + "/.cache/trainopt/builds";
    return failure(
        "neither XDG_CACHE_HOME nor HOME is an absolute path: choose a directory with "
        "--build-cache DIR, or --no-build-cache");
}

Result<BuildCache> open_build_cache(const std::string& dir) {
    if (dir.empty()) return failure("the build cache's path is empty");
    std::error_code ec;
    fs::path path = fs::absolute(dir, ec).lexically_normal();
    if (ec) return failure("the build cache " + dir + " has no absolute path: " + ec.message());
    if (path.filename().empty()) path = path.parent_path();  // a trailing slash
    const std::string shown = path.string();
    // checked before anything is created, so nothing is made where others could redirect it
    if (Status trusted = check_path(path, shown); !trusted) return failure(trusted.error());
    bool created = false;
    if (Status made = create_missing(path, created); !made)
        return failure("the build cache " + shown + " cannot be created: " + made.error());
    struct stat named;
    if (lstat(path.c_str(), &named) != 0)
        return failure("the build cache " + shown + " cannot be examined: " + strerror(errno));
    if (S_ISLNK(named.st_mode))
        return failure("the build cache " + shown + " is a symbolic link: links are not followed");
    if (!S_ISDIR(named.st_mode)) return failure("the build cache " + shown + " is not a directory");
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.fd < 0)
        return failure("the build cache " + shown + " cannot be opened: " + strerror(errno));
    struct stat st;
    if (fstat(fd.fd, &st) != 0 || st.st_dev != named.st_dev || st.st_ino != named.st_ino)
        return failure("the build cache " + shown + " changed while it was opened");
    if (created && fchmod(fd.fd, 0700) == 0) st.st_mode = (st.st_mode & ~07777) | 0700;
    if (Status ours = check_ours(st, "the build cache " + shown); !ours)
        return failure(ours.error());
    BuildCache cache;
    cache.path = shown;
    cache.fd = fd.release();
    return cache;
}

// ---- entries ----

Result<CacheLookup> lookup_build(const BuildCache& cache, const std::string& key,
                                 const std::string& dest) {
    CacheLookup out;
    if (!is_sha256_hex(key)) return failure("not a build cache key: " + key);
    struct stat before;
    if (fstatat(cache.fd, key.c_str(), &before, AT_SYMLINK_NOFOLLOW) != 0) return out;  // a miss
    Result<LoadedEntry> loaded = load_entry(cache.fd, key);
    if (!loaded) {
        // Another trainopt may have evicted the entry while it was read (its files vanish) or
        // replaced it: then this is a miss, and what is there now is not this lookup's to remove.
        struct stat now;
        if (fstatat(cache.fd, key.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
            now.st_dev != before.st_dev || now.st_ino != before.st_ino)
            return out;
        out.distrusted = loaded.error();
        evict(cache.fd, key);
        return out;
    }
    if (loaded->missing) return out;
    UniqueFd fd(open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755));
    if (fd.fd < 0) return failure("cannot create " + dest + ": " + strerror(errno));
    const std::string& binary = loaded->binary;
    size_t written = 0;
    while (written < binary.size()) {
        ssize_t n = write(fd.fd, binary.data() + written, binary.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return failure("cannot write " + dest + ": " + strerror(errno));
        written += (size_t)n;
    }
    if (fchmod(fd.fd, 0755) != 0) return failure("cannot set the mode of " + dest);
    // most recently used: the last entry pruning removes
    utimensat(cache.fd, key.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
    out.hit = loaded->entry;
    return out;
}

Result<bool> store_build(const BuildCache& cache, const std::string& key, const std::string& binary,
                         double build_seconds) {
    if (!is_sha256_hex(key)) return failure("not a build cache key: " + key);
    const fs::path binary_path(binary);
    Result<std::string> content =
        read_file_beneath(binary_path.parent_path().string(), binary_path.filename().string(),
                          {kMaxTrainerBytes, 60});
    if (!content) return failure(content.error());
    CacheEntry entry;
    entry.key = key;
    entry.binary_sha256 = sha256_hex(*content);
    entry.binary_bytes = content->size();
    entry.created_unix = time(nullptr);
    entry.created_at = utc_iso((time_t)entry.created_unix);
    entry.build_seconds = build_seconds;

    const std::string temporary = kTemporaryPrefix + random_hex(8);
    if (mkdirat(cache.fd, temporary.c_str(), 0700) != 0)
        return failure("cannot create " + temporary + " in " + cache.path + ": " + strerror(errno));
    Status written = [&]() -> Status {
        UniqueFd dir(
            openat(cache.fd, temporary.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (dir.fd < 0) return failure("cannot open " + temporary + ": " + strerror(errno));
        if (fchmod(dir.fd, 0700) != 0) return failure("cannot set the mode of " + temporary);
        if (Status w = write_new_file(dir.fd, kBinaryName, *content, 0600); !w) return w;
        if (Status w = write_new_file(dir.fd, kManifestName, manifest_text(entry), 0600); !w)
            return w;
        if (fsync(dir.fd) != 0) return failure("cannot sync " + temporary);
        return {};
    }();
    if (!written) {
        remove_at(cache.fd, temporary);
        return failure("cannot write the entry in " + cache.path + ": " + written.error());
    }
    // the entry appears whole or not at all; renaming onto an entry that exists fails, and that
    // entry (another trainopt's build of the same submission) is kept
    bool stored = true;
    if (renameat(cache.fd, temporary.c_str(), cache.fd, key.c_str()) != 0) {
        const int err = errno;
        remove_at(cache.fd, temporary);
        if (err != EEXIST && err != ENOTEMPTY)
            return failure("cannot put the entry in place in " + cache.path + ": " + strerror(err));
        stored = false;
    }
    fsync(cache.fd);
    prune_build_cache(cache);
    return stored;
}

void prune_build_cache(const BuildCache& cache, size_t max_entries, size_t max_bytes) {
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
            evict(cache.fd, e.name);
        }
    }
}

// ---- a trainer through the cache ----

Result<ObtainedTrainer> build_trainer_with_cache(const BuildCacheOptions& options,
                                                 const std::string& scratch_root,
                                                 const std::string& private_dir,
                                                 const std::string& sandbox_init, SandboxMode mode,
                                                 int jobs) {
    auto build_now = [&](BuildInfo info) -> Result<ObtainedTrainer> {
        spdlog::info("build: compiling the submission's trainer (sandbox: {})", to_string(mode));
        Result<BuiltTrainer> built =
            build_trainer(scratch_root, private_dir, sandbox_init, mode, jobs);
        if (!built) return failure(built.error());
        spdlog::info("build: done in {:.1f} s", built->seconds);
        info.from_cache = false;
        info.seconds = built->seconds;
        info.built_at = utc_iso(time(nullptr));
        return ObtainedTrainer{*built, info};
    };
    auto without_cache = [&](const std::string& why) {
        spdlog::warn("build cache not used: {}", why);
        return build_now({});
    };
    if (!options.enabled) return build_now({});
    if (mode == SandboxMode::none && untrusted_uid() < 0) {
        return without_cache(
            "without bubblewrap and not root, the submission's code runs as this user and could "
            "write the cache");
    }
    Result<std::string> dir = options.dir.empty() ? default_build_cache_dir() : options.dir;
    if (!dir) return without_cache(dir.error());
    Result<BuildCache> cache = open_build_cache(*dir);
    if (!cache) return without_cache(cache.error());
    Result<BuildKeyInputs> inputs = build_key_inputs(scratch_root + "/src", mode);
    if (!inputs) return without_cache(inputs.error());

    BuildInfo info;
    info.cache_key = build_cache_key(*inputs);
    const std::string dest = private_dir + "/" + kBinaryName;
    Result<CacheLookup> found = lookup_build(*cache, info.cache_key, dest);
    if (!found) {
        unlink(dest.c_str());  // a partial copy; build_trainer writes a new one
        spdlog::warn("build cache: {}; building instead", found.error());
        return build_now(info);
    }
    if (found->hit) {
        const CacheEntry& hit = *found->hit;
        spdlog::info("build: reused cached build {} (built in {:.1f} s on {})",
                     short_key(info.cache_key), hit.build_seconds, hit.created_at);
        info.from_cache = true;
        info.seconds = hit.build_seconds;
        info.built_at = hit.created_at;
        return ObtainedTrainer{BuiltTrainer{dest, hit.build_seconds}, info};
    }
    if (!found->distrusted.empty()) {
        spdlog::warn(
            "build cache: the entry {} was not trusted and was removed ({}); building again",
            short_key(info.cache_key), found->distrusted);
    }
    Result<ObtainedTrainer> built = build_now(info);
    if (!built || interrupted()) return built;  // a failed or interrupted build is not stored
    Result<bool> stored = store_build(*cache, info.cache_key, dest, built->trainer.seconds);
    if (!stored)
        spdlog::warn("build cache: not stored: {}", stored.error());
    else if (*stored)
        spdlog::info("build: cached as {} in {}", short_key(info.cache_key), cache->path);
    else
        spdlog::info("build: {} was cached meanwhile by another trainopt; that entry is kept",
                     short_key(info.cache_key));
    return built;
}

}  // namespace trainopt
