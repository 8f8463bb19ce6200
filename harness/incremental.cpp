#include "harness/incremental.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "harness/safe_file.h"
#include "harness/sandbox.h"
#include "scoring/report_format.h"  // utc_iso

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSavedName = "ccache";  // the saved compile cache in a state's entry
constexpr const char* kSavingPrefix = "saving-";
constexpr size_t kMaxManifestBytes = (size_t)64 << 10;
constexpr time_t kStaleSavingSeconds = 3600;

std::string octal(mode_t mode) {
    char buf[16];
    snprintf(buf, sizeof(buf), "%04o", (unsigned)(mode & 07777));
    return buf;
}

// The uid builds run as, who owns a saved compile cache.
uid_t build_uid() {
    const int uid = untrusted_uid();
    return uid >= 0 ? (uid_t)uid : geteuid();
}

std::string manifest_text() {
    nlohmann::json j = {{"format", kIncrementalFormat}, {"created_at", utc_iso(time(nullptr))}};
    return j.dump(2) + "\n";
}

// Checks the open state entry `entry_fd`: its manifest is this format's, and its saved compile
// cache, when there is one, is a directory of the build user's that no one else may enter.
// Returns whether there is a saved compile cache; fails, saying why, when the state must not be
// used.
Result<bool> check_state(int entry_fd) {
    struct stat entry;
    if (fstat(entry_fd, &entry) != 0 || (entry.st_mode & 077) != 0)
        return failure("its directory is open to other users (mode " + octal(entry.st_mode) + ")");
    Result<std::string> text = read_cache_file(entry_fd, kCacheManifestName, kMaxManifestBytes);
    if (!text) return failure(text.error());
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("format") ||
        j["format"] != kIncrementalFormat)
        return failure("manifest.json is not of this format");
    struct stat st;
    if (fstatat(entry_fd, kSavedName, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return false;
        return failure(std::string("its compile cache cannot be examined: ") + strerror(errno));
    }
    if (S_ISLNK(st.st_mode)) return failure("its compile cache is a symbolic link");
    if (!S_ISDIR(st.st_mode)) return failure("its compile cache is not a directory");
    if (st.st_uid != build_uid()) {
        return failure("its compile cache is owned by uid " + std::to_string(st.st_uid) +
                       ", not by the build user (uid " + std::to_string(build_uid()) + ")");
    }
    if ((st.st_mode & 077) != 0) {
        return failure("its compile cache is open to other users (mode " + octal(st.st_mode) + ")");
    }
    return true;
}

// The state entry `key` (an open descriptor), created empty with its manifest when missing. Sets
// `discarded` when an entry was there but failed a check: it is removed and a fresh one made.
Result<int> open_state(const CacheDir& cache, const std::string& key, bool& saved,
                       std::string& discarded) {
    for (int attempt = 0; attempt < 2; attempt++) {
        Result<int> opened = open_cache_entry(cache.fd, key);
        if (opened && *opened >= 0) {
            UniqueFd entry(*opened);
            Result<bool> checked = check_state(entry.fd);
            if (checked) {
                saved = *checked;
                return entry.release();
            }
            discarded = checked.error();
            evict_cache_entry(cache.fd, key);
        } else if (!opened) {
            discarded = opened.error();
            evict_cache_entry(cache.fd, key);
        }
        Result<bool> made = put_cache_entry(cache, key, {{kCacheManifestName, manifest_text()}});
        if (!made) return failure(made.error());
    }
    return failure("the state " + key.substr(0, 12) + " keeps changing under trainopt");
}

// Removes the directories a killed trainopt left while saving into the entry (older than an
// hour: a younger one may be another trainopt's, saving now), with no link followed.
void remove_stale_saving_dirs(int entry_fd) {
    const int listing = dup(entry_fd);
    if (listing < 0) return;
    DIR* dir = fdopendir(listing);
    if (dir == nullptr) {
        close(listing);
        return;
    }
    rewinddir(dir);
    std::vector<std::string> stale;
    const time_t now = time(nullptr);
    while (dirent* e = readdir(dir)) {
        const std::string name = e->d_name;
        struct stat st;
        if (name.rfind(kSavingPrefix, 0) == 0 &&
            fstatat(entry_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            now - st.st_mtim.tv_sec > kStaleSavingSeconds)
            stale.push_back(name);
    }
    closedir(dir);
    for (const std::string& name : stale) evict_cache_entry(entry_fd, name);
}

// Makes an empty directory in the entry for the build user to save the compile cache into.
Result<std::string> make_saving_dir(int entry_fd) {
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "%ld-%d", (long)time(nullptr), (int)getpid());
    const std::string name = kSavingPrefix + std::string(suffix);
    if (mkdirat(entry_fd, name.c_str(), 0700) != 0)
        return failure("cannot create " + name + ": " + strerror(errno));
    if (fchownat(entry_fd, name.c_str(), build_uid(),
                 build_uid() == geteuid() ? getegid() : build_uid(), AT_SYMLINK_NOFOLLOW) != 0) {
        unlinkat(entry_fd, name.c_str(), AT_REMOVEDIR);
        return failure("cannot hand " + name + " to the build user: " + strerror(errno));
    }
    return name;
}

// The entry's directory NAME where the build user's sandbox can reach it: as root, bound at
// scratch_root/MOUNT_NAME in trainopt's own mount namespace (the entry and the cache are closed
// to that user, and stay so); otherwise its own path (builds run as this user). Unbound when it
// goes out of scope.
struct ReachableDir {
    std::string path;
    std::string bound;  // the mount point to unbind; empty: none
    ReachableDir() = default;
    ReachableDir(const ReachableDir&) = delete;
    ReachableDir& operator=(const ReachableDir&) = delete;
    ~ReachableDir() {
        if (!bound.empty()) unbind_privately(bound);
    }
};

Status reach(int entry_fd, const std::string& entry_path, const std::string& name,
             const std::string& scratch_root, const std::string& mount_name, ReachableDir& out) {
    if (geteuid() != 0) {
        out.path = entry_path + "/" + name;
        return {};
    }
    UniqueFd dir(openat(entry_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (dir.fd < 0) return failure("cannot open " + name + ": " + strerror(errno));
    const std::string mount_point = scratch_root + "/" + mount_name;
    if (mkdir(mount_point.c_str(), 0700) != 0)
        return failure("cannot create " + mount_point + ": " + strerror(errno));
    if (Status bound = bind_privately(dir.fd, mount_point); !bound) return bound;
    out.path = mount_point;
    out.bound = mount_point;
    return {};
}

// Saves scratch_root/ccache as the entry's new saved compile cache: copied into a fresh
// directory, which then replaces the old one. Fails, saying why, when it is not saved.
Status save_state(int entry_fd, const std::string& entry_path, const std::string& scratch_root,
                  const std::string& sandbox_init) {
    remove_stale_saving_dirs(entry_fd);
    Result<std::string> saving = make_saving_dir(entry_fd);
    if (!saving) return failure(saving.error());
    Status copied = [&]() -> Status {
        ReachableDir target;
        if (Status reached =
                reach(entry_fd, entry_path, *saving, scratch_root, "ccache-save-target", target);
            !reached)
            return reached;
        return save_compile_cache(scratch_root, target.path, sandbox_init, kIncrementalMaxBytes,
                                  kIncrementalMaxFiles);
    }();
    if (!copied) {
        evict_cache_entry(entry_fd, *saving);
        return copied;
    }
    evict_cache_entry(entry_fd, kSavedName);  // the old one: renamed away, then removed
    if (renameat(entry_fd, saving->c_str(), entry_fd, kSavedName) != 0) {
        const int err = errno;
        evict_cache_entry(entry_fd, *saving);
        return failure(std::string("cannot put it in place: ") + strerror(err));
    }
    return {};
}

}  // namespace

Result<std::string> default_incremental_dir() {
    return default_cache_dir("incremental", "--incremental-dir DIR, or --no-incremental");
}

std::string incremental_unavailable(SandboxMode mode) {
    if (mode != SandboxMode::bubblewrap)
        return "it needs bubblewrap (its state is only ever used inside the build sandbox)";
    if (access(kCcachePath, X_OK) != 0)
        return std::string(kCcachePath) + " is not installed (scripts/install-deps.sh installs it)";
    return "";
}

std::string incremental_state_key(const std::string& canonical_submission,
                                  const BuildKeyInputs& inputs) {
    return cache_key("trainopt incremental state " + std::to_string(kIncrementalFormat),
                     {{"submission", canonical_submission},
                      {"uid", std::to_string(geteuid())},
                      {"build uid", std::to_string(build_uid())},
                      {"recipe", build_recipe(SandboxMode::bubblewrap, true)},
                      {"toolchain", inputs.toolchain},
                      {"machine", inputs.machine},
                      {"trainopt", inputs.trainopt_sha256},
                      {"trusted inputs", inputs.trusted_inputs}});
}

std::string incremental_build_key(const std::string& clean_key, const std::string& state_key) {
    return cache_key("trainopt incremental build " + std::to_string(kIncrementalFormat),
                     {{"clean key", clean_key}, {"state", state_key}});
}

Result<IncrementalBuild> build_trainer_incrementally(const IncrementalOptions& options,
                                                     const std::string& state_key,
                                                     const std::string& scratch_root,
                                                     const std::string& private_dir,
                                                     const std::string& sandbox_init, int jobs) {
    Result<std::string> dir = options.dir.empty() ? default_incremental_dir() : options.dir;
    if (!dir) return failure(dir.error());
    Result<CacheDir> cache = open_cache_dir(*dir, "the incremental build state");
    if (!cache) return failure(cache.error());
    if (options.clear) {
        evict_cache_entry(cache->fd, state_key);
        spdlog::info("incremental build: this workspace's state was cleared");
    }
    IncrementalBuild build;
    bool saved = false;
    Result<int> opened = open_state(*cache, state_key, saved, build.outcome.discarded);
    if (!opened) return failure("its state cannot be made: " + opened.error());
    UniqueFd entry(*opened);
    if (!build.outcome.discarded.empty()) {
        spdlog::warn(
            "incremental build: this workspace's state was discarded ({}); compiling "
            "everything",
            build.outcome.discarded);
    }
    touch_cache_entry(*cache, state_key);
    const std::string entry_path = cache->path + "/" + state_key;
    CompileCacheUse use;
    {
        ReachableDir restore_from;
        if (saved) {
            Status reached = reach(entry.fd, entry_path, kSavedName, scratch_root,
                                   "ccache-restore-source", restore_from);
            if (!reached)
                return failure("its compile cache cannot be restored: " + reached.error());
            use.restore_from = restore_from.path;
        }
        build.outcome.restored = saved;
        build.trainer = build_trainer(scratch_root, private_dir, sandbox_init,
                                      SandboxMode::bubblewrap, jobs, &use);
    }
    struct stat st;
    if (lstat((scratch_root + "/ccache").c_str(), &st) == 0) {
        if (Status kept = save_state(entry.fd, entry_path, scratch_root, sandbox_init); !kept) {
            build.outcome.not_saved = kept.error();
            spdlog::warn("incremental build: the compile cache was not saved: {}", kept.error());
        }
    }
    prune_cache_dir(*cache, kIncrementalMaxWorkspaces, SIZE_MAX);
    return build;
}

}  // namespace trainopt
