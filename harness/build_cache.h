// The build cache: a submission's trainer binary kept under a key that covers everything that
// determines it, so `score`, `verify` and `ci` of an unchanged submission do not build it again.
//
// The key (harness/build_key.h) is a SHA-256 over the scratch tree after intake, the build
// recipe, the toolchain and the CPU the build sees, trainopt's own executable and the
// trusted-input manifest compiled into it, and the cache format. An entry is a directory
// named by its key holding the binary and a small manifest.json (key, the binary's SHA-256 and
// size, when and how long it was built). The cache is trusted storage: only the harness writes
// it, it must be a directory of this user's that no one else can change, and every read goes
// through a descriptor of that checked directory with no link followed. A reused binary is
// checked against its manifest (size and SHA-256) before it is copied into the private directory,
// and is audited and verified like a fresh build; an entry that fails any check is removed and
// the trainer is built again. Entries are written to a temporary directory and renamed into
// place, so concurrent trainopt processes never see half an entry; the cache keeps the
// kBuildCacheMaxEntries most recently used entries within kBuildCacheMaxBytes.
// docs/security.md explains why the cache may be trusted and what a submission can do to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "contract/result.h"
#include "harness/build.h"
#include "harness/build_key.h"
#include "harness/cache_dir.h"
#include "harness/sandbox.h"
#include "scoring/report.h"

namespace trainopt {

constexpr size_t kBuildCacheMaxEntries = 32;
constexpr size_t kBuildCacheMaxBytes = (size_t)2 << 30;

struct BuildCacheOptions {
    bool enabled = true;  // --no-build-cache: false
    std::string dir;      // --build-cache DIR; empty: default_build_cache_dir()
};

// $XDG_CACHE_HOME/trainopt/builds when XDG_CACHE_HOME is an absolute path, else
// $HOME/.cache/trainopt/builds. Fails when neither is set.
Result<std::string> default_build_cache_dir();

// An open, checked cache directory (harness/cache_dir.h).
using BuildCache = CacheDir;

// Opens the cache at `dir` as open_cache_dir does (created 0700; refused, saying why, when anyone
// but this user or root could change it or its path).
Result<BuildCache> open_build_cache(const std::string& dir);

// An entry's manifest.
struct CacheEntry {
    std::string key;
    std::string binary_sha256;
    size_t binary_bytes = 0;
    std::string created_at;  // UTC, ISO 8601
    int64_t created_unix = 0;
    double build_seconds = 0;
};

struct CacheLookup {
    std::optional<CacheEntry> hit;  // set: the binary was copied to the destination
    std::string distrusted;  // non-empty: an entry was there but failed a check (why); removed
};

// Looks `key` up. On a hit the entry's binary, read without following links, owned by this user,
// of the manifest's size and SHA-256, is written to `dest` (a new file, mode 0755) and the entry
// is marked used. A missing entry is a miss; an entry that fails any check is removed and
// reported in `distrusted`. Fails only when `dest` cannot be written.
Result<CacheLookup> lookup_build(const BuildCache& cache, const std::string& key,
                                 const std::string& dest);

// Stores the binary at `binary` (a file only the harness writes) under `key`: written into a
// temporary directory and renamed into place, then prunes the cache. False when an entry
// appeared meanwhile (another trainopt built the same submission): that one is kept.
Result<bool> store_build(const BuildCache& cache, const std::string& key, const std::string& binary,
                         double build_seconds);

// Removes the least recently used entries beyond `max_entries` or `max_bytes`, and temporary
// directories older than an hour (left by a killed trainopt). Anything in the directory that is
// not an entry (a directory named by a key, holding a manifest) is left alone.
void prune_build_cache(const BuildCache& cache, size_t max_entries = kBuildCacheMaxEntries,
                       size_t max_bytes = kBuildCacheMaxBytes);

// A trainer for the score: its private copy and build time, and where it came from.
struct ObtainedTrainer {
    BuiltTrainer trainer;
    BuildInfo info;
};

// build_trainer through the cache: the trainer of the scratch tree under `scratch_root` (src/)
// is reused when the cache holds it, else built and stored. Problems of the cache itself (an
// unsafe directory, an unreadable tree, a failed write) are logged as warnings and the trainer
// is built without it. The cache is not used when a submission's code would run as this user
// outside bubblewrap (no sandbox and not root), since it could then write the cache. Fails only
// as build_trainer does (the submission does not build), and a failed build is never stored.
// With `incremental` (`check` and `verify` only), a miss is built incrementally
// (harness/incremental.h) when that is possible here, and stored under its own key
// (incremental_build_key), which only an incremental build of the same workspace state looks up;
// a clean build of the same tree in the cache is reused first.
struct IncrementalRequest;
Result<ObtainedTrainer> build_trainer_with_cache(const BuildCacheOptions& options,
                                                 const std::string& scratch_root,
                                                 const std::string& private_dir,
                                                 const std::string& sandbox_init, SandboxMode mode,
                                                 int jobs,
                                                 const IncrementalRequest* incremental = nullptr);

}  // namespace trainopt
