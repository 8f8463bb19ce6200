// A trusted cache directory: storage that only trainopt writes, shared by the build cache
// (harness/build_cache.h: built trainers) and the baseline cache (harness/baseline_cache.h: the
// baseline's reference outputs). The directory must be this user's, closed to everyone else,
// and reached through no directory or link anyone else could change; after that check every
// access goes through a descriptor of it with no link followed. An entry is a directory named by
// its key (64 hex digits) holding manifest.json and its files, written to a temporary directory
// and renamed into place, so concurrent trainopt processes never see half of one. What each
// cache puts in its entries, and how it checks them on a hit, is its own.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "contract/result.h"

namespace trainopt {

// Every entry holds this file; a directory without it is not an entry (never counted or pruned).
constexpr const char* kCacheManifestName = "manifest.json";

// $XDG_CACHE_HOME/trainopt/LEAF when XDG_CACHE_HOME is an absolute path, else
// $HOME/.cache/trainopt/LEAF. Fails, naming `option` (the option that chooses another
// directory), when neither is set.
Result<std::string> default_cache_dir(const std::string& leaf, const std::string& option);

// An open, checked cache directory. Every operation goes through `fd`, so the directory that was
// checked is the one used, whatever happens to its path afterwards.
struct CacheDir {
    std::string path;
    int fd = -1;
    CacheDir() = default;
    CacheDir(CacheDir&& other) noexcept;
    CacheDir& operator=(CacheDir&& other) noexcept;
    CacheDir(const CacheDir&) = delete;
    CacheDir& operator=(const CacheDir&) = delete;
    ~CacheDir();
};

// Opens the cache at `dir`, creating it (and missing parents) with mode 0700; `what` names it in
// messages ("the build cache"). Refuses, saying why and before creating anything, a `dir` that
// is a symbolic link or not a directory, that is not owned by this user or is writable by its
// group or everyone, or whose path passes through a directory or link someone other than this
// user or root could change (not owned by either, or group- or world-writable without the
// sticky bit), as written or where its links lead.
Result<CacheDir> open_cache_dir(const std::string& dir, const std::string& what);

// Fails unless `st` belongs to this user and no one else may write it; `what` names it.
Status check_ours(const struct stat& st, const std::string& what);

// The entry directory `key` of the cache, opened without following a link and checked to be
// this user's: a descriptor the caller closes, or -1 when there is no such entry. Fails, saying
// why, when what is there must not be trusted (a link, a file, another owner).
Result<int> open_cache_entry(int cache_fd, const std::string& key);

// What read_cache_entry found.
struct EntryLookup {
    bool hit = false;        // the entry was there and `read` accepted it
    std::string distrusted;  // non-empty: an entry was there but failed a check (why); evicted
};

// Looks the entry `key` up and hands its open, checked directory to `read`, which reads and checks
// its files (through read_cache_file) and fails, saying why, when they must not be trusted. A
// missing entry is a miss; a distrusted one is evicted, unless it vanished or was replaced while
// it was read (another trainopt evicted or stored it), which is a miss too.
EntryLookup read_cache_entry(const CacheDir& cache, const std::string& key,
                             const std::function<Status(int entry_fd)>& read);

// A regular file NAME of the directory `dir_fd`: not a link, this user's, at most `max_bytes`.
Result<std::string> read_cache_file(int dir_fd, const std::string& name, size_t max_bytes);

// A file of an entry, as put_cache_entry writes it.
struct CacheFile {
    std::string name;
    std::string content;
};

// Writes an entry `key` holding `files` (one of them kCacheManifestName) into a temporary
// directory and renames it into place: it appears whole or not at all. False when an entry
// `key` appeared meanwhile (another trainopt stored the same thing): that one is kept.
Result<bool> put_cache_entry(const CacheDir& cache, const std::string& key,
                             const std::vector<CacheFile>& files);

// Takes the entry NAME out of the cache at once (renamed to a hidden name no lookup matches),
// then deletes it, with no link followed. When NAME is gone already, another trainopt took it.
void evict_cache_entry(int cache_fd, const std::string& name);

// Removes the least recently used entries beyond `max_entries` or `max_bytes`, and temporary
// directories older than an hour (left by a killed trainopt). Anything in the directory that is
// not an entry (a directory named by a key, holding a manifest) is left alone.
void prune_cache_dir(const CacheDir& cache, size_t max_entries, size_t max_bytes);

// A cache key: SHA-256 (64 hex digits) of `header` and every (name, value) part in order, each
// value length-prefixed ("NAME LENGTH:VALUE\n") so that no part can run into the next.
std::string cache_key(const std::string& header,
                      const std::vector<std::pair<std::string, std::string>>& parts);

// True for a date as utc_iso writes it (digits and ISO 8601's separators only, at most 32
// characters): what a manifest's date must be before it reaches a log or a report.
bool is_plain_utc_date(const std::string& date);

// Marks the entry `key` as just used: the last one pruning removes.
void touch_cache_entry(const CacheDir& cache, const std::string& key);

}  // namespace trainopt
