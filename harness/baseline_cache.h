// The baseline cache: the pristine baseline's reference outputs of one run (its per-step losses
// and final weights; never its times), kept so that `verify --seed S` and `check` of a changed
// submission run only the submission. The baseline is deterministic: the same trainer, task file,
// training tokens, seed and thread count give the same outputs bit for bit, so outputs computed
// once are the reference of every later run with the same inputs.
//
// The key is a SHA-256 over everything that determines those outputs: the trusted-input manifest
// compiled into trainopt (the pristine tree, the baseline trainer binary, the sandbox init),
// trainopt's own executable, the CPU (libm picks its code paths by CPU), the task file the trainer
// reads byte for byte, the training tokens, the seed, the --threads the trainer is given, and
// the cache format. An entry is a directory named by its key (harness/cache_dir.h) holding
// reference.bin (the final checkpoint followed by the per-step losses) and manifest.json (key,
// SHA-256 and size of reference.bin, task, seed, steps, date). It is stored only after the
// baseline's own outputs passed every check, and read back as carefully as a run's outputs: the
// manifest first (bounded), then reference.bin, whose size must be the task's exact size and
// whose SHA-256 must match the manifest, parsed with the contract's checkpoint parser (shape,
// step count, every value finite). Anything else removes the entry and the baseline runs again.
// Timings are never cached: a run that reused a reference has no baseline time and no speedup.
// docs/security.md ("The baseline cache") says why a submission cannot poison it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "contract/result.h"
#include "harness/cache_dir.h"
#include "harness/verify.h"
#include "tasks/task_spec.h"

namespace trainopt {

constexpr int kBaselineCacheFormat = 1;  // part of every key; bump when the entries' layout changes
constexpr size_t kBaselineCacheMaxEntries = 64;
constexpr size_t kBaselineCacheMaxBytes = (size_t)1 << 30;

struct BaselineCacheOptions {
    bool enabled = true;  // --no-baseline-cache: false
    std::string dir;      // --baseline-cache DIR; empty: default_baseline_cache_dir()
};

// $XDG_CACHE_HOME/trainopt/baselines, else $HOME/.cache/trainopt/baselines: next to the build
// cache (default_build_cache_dir). Fails when neither is set.
Result<std::string> default_baseline_cache_dir();

// Opens the baseline cache as open_cache_dir does (created 0700; refused, saying why, when anyone
// but this user or root could change it or its path).
Result<CacheDir> open_baseline_cache(const std::string& dir);

// What the key covers; each part is text that changes when what it stands for does.
struct BaselineKeyInputs {
    std::string trusted_inputs;    // trusted_manifest_digest(): pristine tree, baseline, init
    std::string trainopt_sha256;   // trainopt's own executable
    std::string machine;           // machine_identity()
    std::string task_file_sha256;  // the task file the trainer reads
    std::string train_sha256;      // the training tokens (train.bin)
    uint64_t seed = 0;
    int threads = 0;  // --threads given to the trainer
};

// The key: SHA-256 (64 hex digits) over the cache format and every part, each length-prefixed.
std::string baseline_cache_key(const BaselineKeyInputs& inputs);

// Every part of the key for a baseline run of `task` reading `task_file` (a file the harness
// wrote) and the tokens `train`. Fails when trainopt's executable or the task file cannot be read.
Result<BaselineKeyInputs> baseline_key_inputs(const std::string& task_file,
                                              const std::vector<int>& train, uint64_t seed,
                                              int threads);

// What lookup_baseline found.
struct BaselineLookup {
    std::optional<RunOutputs> hit;  // the cached losses and checkpoint (no nonce, no kernel times)
    std::string created_at;         // when the hit was stored (UTC, ISO 8601)
    std::string distrusted;  // non-empty: an entry was there but failed a check (why); removed
};

// Looks `key` up for `task`: on a hit, the reference outputs, every check passed, and the entry
// is marked used. A missing entry is a miss; an entry that fails any check is removed and
// reported in `distrusted`.
BaselineLookup lookup_baseline(const CacheDir& cache, const std::string& key, const TaskSpec& task);

// Stores the baseline's checked outputs of a run of `task` under `key` (atomically), then prunes
// the cache to kBaselineCacheMaxEntries within kBaselineCacheMaxBytes. False when an entry
// appeared meanwhile (that one is kept).
Result<bool> store_baseline(const CacheDir& cache, const std::string& key, const TaskSpec& task,
                            uint64_t seed, const RunOutputs& outputs);

}  // namespace trainopt
