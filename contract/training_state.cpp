#include "contract/training_state.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "contract/checkpoint.h"

namespace trainopt {

namespace {

struct FileCloser {
    void operator()(FILE* f) const { fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

bool all_finite(const std::vector<float>& values) {
    for (float x : values) {
        if (!std::isfinite(x)) return false;
    }
    return true;
}

}  // namespace

size_t training_state_bytes(const GPTConfig& config) {
    return kCheckpointHeaderBytes + 3 * num_parameters(config) * sizeof(float);
}

std::string training_state_file(const GPTConfig& config, int step, const float* params,
                                const float* m, const float* v) {
    const std::array<int32_t, kModelHeaderInts> header =
        model_file_header(kTrainingStateMagic, kTrainingStateVersion, config, step);
    const size_t tensor_bytes = num_parameters(config) * sizeof(float);
    std::string bytes(training_state_bytes(config), '\0');
    char* out = bytes.data();
    std::memcpy(out, header.data(), sizeof(header));
    std::memcpy(out + kCheckpointHeaderBytes, params, tensor_bytes);
    std::memcpy(out + kCheckpointHeaderBytes + tensor_bytes, m, tensor_bytes);
    std::memcpy(out + kCheckpointHeaderBytes + 2 * tensor_bytes, v, tensor_bytes);
    return bytes;
}

Status write_training_state(const std::string& path, const GPTConfig& config, int step,
                            const float* params, const float* m, const float* v) {
    const std::string bytes = training_state_file(config, step, params, m, v);
    File f(fopen(path.c_str(), "wb"));
    if (!f) return failure("cannot open " + path + " for writing");
    if (fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size())
        return failure("short write to " + path);
    if (fflush(f.get()) != 0) return failure("cannot flush " + path);
    return {};
}

Result<TrainingState> parse_training_state(const std::string& bytes, const GPTConfig& expected,
                                           const std::string& name) {
    if (bytes.size() < kCheckpointHeaderBytes)
        return failure(name + " is shorter than its 256-byte header");
    int32_t header[kModelHeaderInts];
    std::memcpy(header, bytes.data(), sizeof(header));
    if (header[0] != kTrainingStateMagic || header[1] != kTrainingStateVersion)
        return failure(name + " has a bad magic number or version (not a training state)");
    if (!header_has_shape(header, expected)) {
        return failure(name + " holds a model of a different shape than the task's");
    }
    if (header[7] < 0) return failure(name + " has a negative step count");
    if (bytes.size() != training_state_bytes(expected)) {
        return failure(name + " is " + std::to_string(bytes.size()) +
                       " bytes; the task's model needs exactly " +
                       std::to_string(training_state_bytes(expected)));
    }
    const size_t n = num_parameters(expected);
    TrainingState state;
    state.step = header[7];
    std::vector<float>* tensors[3] = {&state.params, &state.m, &state.v};
    for (int i = 0; i < 3; i++) {
        tensors[i]->resize(n);
        std::memcpy(tensors[i]->data(),
                    bytes.data() + kCheckpointHeaderBytes + i * n * sizeof(float),
                    n * sizeof(float));
        if (!all_finite(*tensors[i])) return failure(name + " holds non-finite values");
    }
    for (float x : state.v) {
        if (x < 0) return failure(name + " holds a negative second moment");
    }
    return state;
}

}  // namespace trainopt
