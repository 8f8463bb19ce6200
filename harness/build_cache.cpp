#include "harness/build_cache.h"

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

#include "harness/cache_dir.h"
#include "harness/incremental.h"
#include "harness/process.h"
#include "harness/safe_file.h"
#include "scoring/report_format.h"
#include "scoring/spec_hash.h"  // is_sha256_hex
#include "tasks/sha256.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr const char* kBinaryName = "trainopt-train";
constexpr const char* kManifestName = kCacheManifestName;
constexpr size_t kMaxManifestBytes = (size_t)64 << 10;

std::string short_key(const std::string& key) {
    return key.substr(0, 12);
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
    // the date reaches the log and the report
    if (!is_plain_utc_date(e.created_at) || !(e.build_seconds >= 0 && e.build_seconds < 1e7))
        return failure("manifest.json gives an impossible date or build time");
    return e;
}

// Reads the open entry directory `entry_fd` of `key`: its manifest, then its binary, which must
// match the manifest. Fails, saying why, when the entry must not be trusted.
Status load_entry(int entry_fd, const std::string& key, CacheEntry& entry, std::string& binary) {
    Result<std::string> text = read_cache_file(entry_fd, kManifestName, kMaxManifestBytes);
    if (!text) return failure(text.error());
    Result<CacheEntry> manifest = parse_manifest(*text, key);
    if (!manifest) return failure(manifest.error());
    Result<std::string> content = read_cache_file(entry_fd, kBinaryName, manifest->binary_bytes);
    if (!content) return failure(content.error());
    if (content->size() != manifest->binary_bytes) {
        return failure("the binary is " + std::to_string(content->size()) +
                       " bytes, its manifest says " + std::to_string(manifest->binary_bytes));
    }
    const std::string sha = sha256_hex(*content);
    if (sha != manifest->binary_sha256) {
        return failure("the binary's SHA-256 is " + sha + ", its manifest says " +
                       manifest->binary_sha256);
    }
    entry = *manifest;
    binary = std::move(*content);
    return {};
}

}  // namespace

Result<std::string> default_build_cache_dir() {
    return default_cache_dir("builds", "--build-cache DIR, or --no-build-cache");
}

Result<BuildCache> open_build_cache(const std::string& dir) {
    return open_cache_dir(dir, "the build cache");
}

// ---- entries ----

Result<CacheLookup> lookup_build(const BuildCache& cache, const std::string& key,
                                 const std::string& dest) {
    CacheLookup out;
    if (!is_sha256_hex(key)) return failure("not a build cache key: " + key);
    CacheEntry entry;
    std::string binary;
    const EntryLookup found = read_cache_entry(
        cache, key, [&](int entry_fd) { return load_entry(entry_fd, key, entry, binary); });
    out.distrusted = found.distrusted;
    if (!found.hit) return out;
    UniqueFd fd(open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755));
    if (fd.fd < 0) return failure("cannot create " + dest + ": " + strerror(errno));
    size_t written = 0;
    while (written < binary.size()) {
        ssize_t n = write(fd.fd, binary.data() + written, binary.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return failure("cannot write " + dest + ": " + strerror(errno));
        written += (size_t)n;
    }
    if (fchmod(fd.fd, 0755) != 0) return failure("cannot set the mode of " + dest);
    touch_cache_entry(cache, key);
    out.hit = entry;
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

    Result<bool> stored = put_cache_entry(
        cache, key, {{kBinaryName, *content}, {kManifestName, manifest_text(entry)}});
    if (stored) prune_build_cache(cache);
    return stored;
}

void prune_build_cache(const BuildCache& cache, size_t max_entries, size_t max_bytes) {
    prune_cache_dir(cache, max_entries, max_bytes);
}

// ---- a trainer through the cache ----

Result<ObtainedTrainer> build_trainer_with_cache(const BuildCacheOptions& options,
                                                 const std::string& scratch_root,
                                                 const std::string& private_dir,
                                                 const std::string& sandbox_init, SandboxMode mode,
                                                 int jobs, const IncrementalRequest* incremental) {
    // `state_key` non-empty: an incremental build with that workspace state
    auto build_now = [&](BuildInfo info, const std::string& state_key) -> Result<ObtainedTrainer> {
        info.from_cache = false;
        if (!state_key.empty()) {
            spdlog::info("build: compiling the submission's trainer incrementally (sandbox: {})",
                         to_string(mode));
            Result<IncrementalBuild> built = build_trainer_incrementally(
                incremental->options, state_key, scratch_root, private_dir, sandbox_init, jobs);
            if (built) {
                if (!built->trainer) return failure(built->trainer.error());
                info.incremental = true;
                if (const std::optional<CompileCounts>& counts = built->trainer->compilations) {
                    info.compiled_files = counts->compiled;
                    info.files_from_compile_cache = counts->from_cache;
                }
                info.seconds = built->trainer->seconds;
                info.built_at = utc_iso(time(nullptr));
                spdlog::info("build: done in {:.1f} s, incrementally{}", info.seconds,
                             compile_counts_text(info));
                return ObtainedTrainer{*built->trainer, info};
            }
            spdlog::warn("incremental build not used: {}; building from scratch", built.error());
            info.cache_key.clear();  // the key of an incremental build; this one is not
        }
        spdlog::info("build: compiling the submission's trainer (sandbox: {})", to_string(mode));
        Result<BuiltTrainer> built =
            build_trainer(scratch_root, private_dir, sandbox_init, mode, jobs);
        if (!built) return failure(built.error());
        spdlog::info("build: done in {:.1f} s", built->seconds);
        info.seconds = built->seconds;
        info.built_at = utc_iso(time(nullptr));
        return ObtainedTrainer{*built, info};
    };
    std::string state_key;  // set once the incremental build is known to be possible
    bool want_incremental = incremental != nullptr && incremental->options.enabled;
    if (want_incremental) {
        if (const std::string why = incremental_unavailable(mode); !why.empty()) {
            spdlog::warn("incremental build not used: {}", why);
            want_incremental = false;
        }
    }
    auto without_cache = [&](const std::string& why) {
        spdlog::warn("build cache not used: {}", why);
        return build_now({}, state_key);
    };
    Result<BuildKeyInputs> inputs = failure("not needed");
    if (options.enabled || want_incremental) {
        inputs = build_key_inputs(scratch_root + "/src", mode);
        if (inputs && want_incremental) {
            std::error_code ec;
            const fs::path canonical = fs::canonical(incremental->submission, ec);
            if (ec)
                spdlog::warn("incremental build not used: the submission's path: {}", ec.message());
            else
                state_key = incremental_state_key(canonical.string(), *inputs);
        } else if (want_incremental) {
            spdlog::warn("incremental build not used: {}", inputs.error());
        }
    }
    if (!options.enabled) return build_now({}, state_key);
    if (mode == SandboxMode::none && untrusted_uid() < 0) {
        return without_cache(
            "without bubblewrap and not root, the submission's code runs as this user and could "
            "write the cache");
    }
    Result<std::string> dir = options.dir.empty() ? default_build_cache_dir() : options.dir;
    if (!dir) return without_cache(dir.error());
    Result<BuildCache> cache = open_build_cache(*dir);
    if (!cache) return without_cache(cache.error());
    if (!inputs) return without_cache(inputs.error());

    // A clean build of this tree (`score`'s, or a check's without an incremental build) is
    // reused by anyone; an incremental one only by an incremental build of the same state.
    std::vector<std::string> keys = {build_cache_key(*inputs)};
    if (!state_key.empty()) keys.push_back(incremental_build_key(keys[0], state_key));
    const std::string dest = private_dir + "/" + kBinaryName;
    for (size_t k = 0; k < keys.size(); k++) {
        Result<CacheLookup> found = lookup_build(*cache, keys[k], dest);
        if (!found) {
            unlink(dest.c_str());  // a partial copy; build_trainer writes a new one
            spdlog::warn("build cache: {}; building instead", found.error());
            break;
        }
        if (found->hit) {
            const CacheEntry& hit = *found->hit;
            spdlog::info("build: reused cached build {} (built in {:.1f} s on {}{})",
                         short_key(keys[k]), hit.build_seconds, hit.created_at,
                         k > 0 ? ", incrementally" : "");
            BuildInfo info;
            info.cache_key = keys[k];
            info.from_cache = true;
            info.incremental = k > 0;
            info.seconds = hit.build_seconds;
            info.built_at = hit.created_at;
            return ObtainedTrainer{BuiltTrainer{dest, hit.build_seconds, std::nullopt}, info};
        }
        if (!found->distrusted.empty()) {
            spdlog::warn(
                "build cache: the entry {} was not trusted and was removed ({}); building again",
                short_key(keys[k]), found->distrusted);
        }
    }
    BuildInfo info;
    info.cache_key = keys.back();
    Result<ObtainedTrainer> built = build_now(info, state_key);
    if (!built || interrupted()) return built;  // a failed or interrupted build is not stored
    const std::string& key = built->info.cache_key.empty() ? keys.front() : built->info.cache_key;
    Result<bool> stored = store_build(*cache, key, dest, built->trainer.seconds);
    if (!stored)
        spdlog::warn("build cache: not stored: {}", stored.error());
    else if (*stored)
        spdlog::info("build: cached as {} in {}", short_key(key), cache->path);
    else
        spdlog::info("build: {} was cached meanwhile by another trainopt; that entry is kept",
                     short_key(key));
    built->info.cache_key = key;
    return built;
}

}  // namespace trainopt
