#include "contract/checkpoint.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

namespace trainopt {

namespace {
struct FileCloser {
    void operator()(FILE* f) const { fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;
}  // namespace

std::array<int32_t, kModelHeaderInts> model_file_header(int magic, int version,
                                                        const GPTConfig& config, int steps) {
    std::array<int32_t, kModelHeaderInts> header{};
    header[0] = magic;
    header[1] = version;
    header[2] = config.vocab_size;
    header[3] = config.max_seq_len;
    header[4] = config.channels;
    header[5] = config.num_layers;
    header[6] = config.num_heads;
    header[7] = steps;
    return header;
}

bool header_has_shape(const int32_t* header, const GPTConfig& config) {
    return header[2] == config.vocab_size && header[3] == config.max_seq_len &&
           header[4] == config.channels && header[5] == config.num_layers &&
           header[6] == config.num_heads;
}

size_t checkpoint_bytes(const GPTConfig& config) {
    return kCheckpointHeaderBytes + num_parameters(config) * sizeof(float);
}

Status write_checkpoint(const std::string& path, const GPTConfig& config, int steps,
                        const float* params, size_t num_params) {
    const std::array<int32_t, kModelHeaderInts> header =
        model_file_header(kCheckpointMagic, kCheckpointVersion, config, steps);
    File f(fopen(path.c_str(), "wb"));
    if (!f) return failure("cannot open " + path + " for writing");
    if (fwrite(header.data(), sizeof(header), 1, f.get()) != 1 ||
        fwrite(params, sizeof(float), num_params, f.get()) != num_params) {
        return failure("short write to " + path);
    }
    if (fflush(f.get()) != 0) return failure("cannot flush " + path);
    return {};
}

Result<Checkpoint> parse_checkpoint(const std::string& bytes, const GPTConfig& expected,
                                    int steps) {
    if (bytes.size() < kCheckpointHeaderBytes)
        return failure("final.ckpt is shorter than its 256-byte header");
    int32_t header[kModelHeaderInts];
    std::memcpy(header, bytes.data(), sizeof(header));
    if (header[0] != kCheckpointMagic || header[1] != kCheckpointVersion)
        return failure("final.ckpt has a bad magic number or version");
    if (!header_has_shape(header, expected)) {
        return failure("final.ckpt holds a model of a different shape than the task's");
    }
    if (header[7] != steps) {
        return failure("final.ckpt says " + std::to_string(header[7]) +
                       " steps were trained, the task has " + std::to_string(steps));
    }
    if (bytes.size() != checkpoint_bytes(expected)) {
        return failure("final.ckpt is " + std::to_string(bytes.size()) +
                       " bytes; the task's model needs exactly " +
                       std::to_string(checkpoint_bytes(expected)));
    }
    Checkpoint out;
    out.config = expected;
    out.steps = steps;
    out.params.resize(num_parameters(expected));
    std::memcpy(out.params.data(), bytes.data() + kCheckpointHeaderBytes,
                out.params.size() * sizeof(float));
    for (float p : out.params) {
        if (!std::isfinite(p)) return failure("final.ckpt holds non-finite parameters");
    }
    return out;
}

Result<Checkpoint> parse_checkpoint_any_steps(const std::string& bytes, const GPTConfig& expected) {
    if (bytes.size() < kCheckpointHeaderBytes)
        return failure("final.ckpt is shorter than its 256-byte header");
    int32_t steps = 0;
    std::memcpy(&steps, bytes.data() + 7 * sizeof(int32_t), sizeof(steps));
    if (steps < 0) return failure("final.ckpt says a negative number of steps was trained");
    return parse_checkpoint(bytes, expected, steps);  // checks the rest of the header first
}

}  // namespace trainopt
