#include "harness/baseline_cache.h"

#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "contract/checkpoint.h"
#include "contract/trainer_io.h"
#include "harness/build_key.h"
#include "harness/safe_file.h"
#include "harness/trusted_inputs.h"
#include "scoring/report_format.h"
#include "scoring/spec_hash.h"  // is_sha256_hex
#include "tasks/sha256.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr const char* kReferenceName = "reference.bin";
constexpr size_t kMaxManifestBytes = (size_t)64 << 10;
constexpr size_t kMaxTaskFileBytes = (size_t)1 << 20;

// reference.bin's exact size for `task`: its checkpoint, then one float per step.
size_t reference_bytes(const TaskSpec& task) {
    return checkpoint_bytes(gpt_config_of(task)) + (size_t)task.train.steps * sizeof(float);
}

std::string reference_payload(const TaskSpec& task, const RunOutputs& outputs) {
    const GPTConfig config = gpt_config_of(task);
    const auto header =
        model_file_header(kCheckpointMagic, kCheckpointVersion, config, task.train.steps);
    std::string out(reinterpret_cast<const char*>(header.data()), sizeof(header));
    const std::vector<float>& params = outputs.checkpoint.params;
    out.append(reinterpret_cast<const char*>(params.data()), params.size() * sizeof(float));
    out.append(reinterpret_cast<const char*>(outputs.losses.data()),
               outputs.losses.size() * sizeof(float));
    return out;
}

// The outputs reference.bin holds, checked against the task as a run's outputs are.
Result<RunOutputs> parse_reference(const std::string& bytes, const TaskSpec& task) {
    if (bytes.size() != reference_bytes(task)) {
        return failure(std::string(kReferenceName) + " is " + std::to_string(bytes.size()) +
                       " bytes, not the " + std::to_string(reference_bytes(task)) +
                       " of this task's");
    }
    const GPTConfig config = gpt_config_of(task);
    const size_t ckpt = checkpoint_bytes(config);
    Result<Checkpoint> checkpoint =
        parse_checkpoint(bytes.substr(0, ckpt), config, task.train.steps);
    if (!checkpoint) return failure(checkpoint.error());
    RunOutputs outputs;
    outputs.checkpoint = std::move(*checkpoint);
    outputs.losses.resize((size_t)task.train.steps);
    memcpy(outputs.losses.data(), bytes.data() + ckpt, outputs.losses.size() * sizeof(float));
    for (float loss : outputs.losses) {
        if (!std::isfinite(loss)) return failure(std::string(kReferenceName) + " holds a NaN loss");
    }
    return outputs;
}

struct Manifest {
    std::string key;
    std::string reference_sha256;
    size_t reference_bytes = 0;
    std::string created_at;
};

std::string manifest_text(const Manifest& m, const TaskSpec& task, uint64_t seed) {
    nlohmann::json j = {{"format", kBaselineCacheFormat},
                        {"key", m.key},
                        {"reference", kReferenceName},
                        {"reference_sha256", m.reference_sha256},
                        {"reference_bytes", m.reference_bytes},
                        {"created_at", m.created_at},
                        // for a reader of the cache; the key covers what matters
                        {"task", task.name},
                        {"task_spec_sha256", task_spec_hash(task)},
                        {"seed", seed},
                        {"steps", task.train.steps}};
    return j.dump(2) + "\n";
}

// Parses a manifest and checks it describes an entry of this format for `key` and `task`.
Result<Manifest> parse_manifest(const std::string& text, const std::string& key,
                                const TaskSpec& task) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return failure("manifest.json is not JSON");
    Manifest m;
    try {
        if (j.at("format").get<int>() != kBaselineCacheFormat)
            return failure("manifest.json is of another format");
        m.key = j.at("key").get<std::string>();
        m.reference_sha256 = j.at("reference_sha256").get<std::string>();
        m.reference_bytes = j.at("reference_bytes").get<size_t>();
        m.created_at = j.at("created_at").get<std::string>();
    } catch (const std::exception&) {
        return failure("manifest.json lacks a field or has one of the wrong type");
    }
    if (m.key != key) return failure("manifest.json is for another key");
    if (!is_sha256_hex(m.reference_sha256))
        return failure("manifest.json holds no SHA-256 of " + std::string(kReferenceName));
    if (m.reference_bytes != reference_bytes(task))
        return failure("manifest.json gives a size other than this task's");
    if (!is_plain_utc_date(m.created_at)) return failure("manifest.json gives an impossible date");
    return m;
}

// The bytes of `tokens` as train.bin holds them (little-endian int32), for the key.
std::string token_bytes(const std::vector<int>& tokens) {
    std::string out(tokens.size() * sizeof(int32_t), '\0');
    for (size_t i = 0; i < tokens.size(); i++) {
        const int32_t v = tokens[i];
        memcpy(&out[i * sizeof(int32_t)], &v, sizeof(v));
    }
    return out;
}

}  // namespace

Result<std::string> default_baseline_cache_dir() {
    return default_cache_dir("baselines", "--baseline-cache DIR, or --no-baseline-cache");
}

Result<CacheDir> open_baseline_cache(const std::string& dir) {
    return open_cache_dir(dir, "the baseline cache");
}

std::string baseline_cache_key(const BaselineKeyInputs& in) {
    return cache_key("trainopt baseline cache " + std::to_string(kBaselineCacheFormat),
                     {{"trusted-inputs", in.trusted_inputs},
                      {"trainopt", in.trainopt_sha256},
                      {"machine", in.machine},
                      {"task-file", in.task_file_sha256},
                      {"train-tokens", in.train_sha256},
                      {"seed", std::to_string(in.seed)},
                      {"threads", std::to_string(in.threads)}});
}

Result<BaselineKeyInputs> baseline_key_inputs(const std::string& task_file,
                                              const std::vector<int>& train, uint64_t seed,
                                              int threads) {
    BaselineKeyInputs in;
    in.trusted_inputs = trusted_manifest_digest();
    Result<std::string> self = own_executable_sha256();
    if (!self) return failure(self.error());
    in.trainopt_sha256 = *self;
    in.machine = machine_identity();
    const fs::path path(task_file);
    Result<std::string> text = read_file_beneath(path.parent_path().string(),
                                                 path.filename().string(), {kMaxTaskFileBytes, 10});
    if (!text) return failure("the task file cannot be hashed: " + text.error());
    in.task_file_sha256 = sha256_hex(*text);
    in.train_sha256 = sha256_hex(token_bytes(train));
    in.seed = seed;
    in.threads = threads;
    return in;
}

BaselineLookup lookup_baseline(const CacheDir& cache, const std::string& key,
                               const TaskSpec& task) {
    BaselineLookup out;
    if (!is_sha256_hex(key)) {
        out.distrusted = "not a baseline cache key: " + key;
        return out;
    }
    RunOutputs outputs;
    std::string created_at;
    const EntryLookup found = read_cache_entry(cache, key, [&](int entry_fd) -> Status {
        Result<std::string> text = read_cache_file(entry_fd, kCacheManifestName, kMaxManifestBytes);
        if (!text) return failure(text.error());
        Result<Manifest> manifest = parse_manifest(*text, key, task);
        if (!manifest) return failure(manifest.error());
        Result<std::string> bytes =
            read_cache_file(entry_fd, kReferenceName, manifest->reference_bytes);
        if (!bytes) return failure(bytes.error());
        const std::string sha = sha256_hex(*bytes);
        if (sha != manifest->reference_sha256) {
            return failure(std::string(kReferenceName) + "'s SHA-256 is " + sha +
                           ", its manifest says " + manifest->reference_sha256);
        }
        Result<RunOutputs> parsed = parse_reference(*bytes, task);
        if (!parsed) return failure(parsed.error());
        outputs = std::move(*parsed);
        created_at = manifest->created_at;
        return {};
    });
    out.distrusted = found.distrusted;
    if (!found.hit) return out;
    touch_cache_entry(cache, key);
    out.hit = std::move(outputs);
    out.created_at = created_at;
    return out;
}

Result<bool> store_baseline(const CacheDir& cache, const std::string& key, const TaskSpec& task,
                            uint64_t seed, const RunOutputs& outputs) {
    if (!is_sha256_hex(key)) return failure("not a baseline cache key: " + key);
    if (outputs.losses.size() != (size_t)task.train.steps ||
        outputs.checkpoint.params.size() != num_parameters(gpt_config_of(task)))
        return failure("the baseline's outputs do not have the task's shape");
    const std::string payload = reference_payload(task, outputs);
    Manifest m;
    m.key = key;
    m.reference_sha256 = sha256_hex(payload);
    m.reference_bytes = payload.size();
    m.created_at = utc_iso(time(nullptr));
    Result<bool> stored = put_cache_entry(
        cache, key,
        {{kReferenceName, payload}, {kCacheManifestName, manifest_text(m, task, seed)}});
    if (stored) prune_cache_dir(cache, kBaselineCacheMaxEntries, kBaselineCacheMaxBytes);
    return stored;
}

}  // namespace trainopt
