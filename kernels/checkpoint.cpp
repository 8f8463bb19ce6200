#include "kernels/checkpoint.h"

#include <cstdint>
#include <cstdio>
#include <memory>

namespace trainopt {

namespace {
struct FileCloser {
    void operator()(FILE* f) const { fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;
}  // namespace

std::string write_checkpoint(const std::string& path, const GPTConfig& config, int steps,
                             const float* params, size_t num_params) {
    int32_t header[64] = {};
    header[0] = kCheckpointMagic;
    header[1] = kCheckpointVersion;
    header[2] = config.vocab_size;
    header[3] = config.max_seq_len;
    header[4] = config.channels;
    header[5] = config.num_layers;
    header[6] = config.num_heads;
    header[7] = steps;
    File f(fopen(path.c_str(), "wb"));
    if (!f) return "cannot open " + path + " for writing";
    if (fwrite(header, sizeof(header), 1, f.get()) != 1 ||
        fwrite(params, sizeof(float), num_params, f.get()) != num_params) {
        return "short write to " + path;
    }
    if (fflush(f.get()) != 0) return "cannot flush " + path;
    return "";
}

bool read_checkpoint(const std::string& path, Checkpoint& out, std::string& error) {
    File f(fopen(path.c_str(), "rb"));
    if (!f) {
        error = "cannot open checkpoint " + path;
        return false;
    }
    int32_t header[64];
    if (fread(header, sizeof(header), 1, f.get()) != 1) {
        error = "checkpoint " + path + " is shorter than its 256-byte header";
        return false;
    }
    if (header[0] != kCheckpointMagic || header[1] != kCheckpointVersion) {
        error = "checkpoint " + path + " has a bad magic number or version";
        return false;
    }
    out.config = GPTConfig{header[2], header[3], header[4], header[5], header[6]};
    out.steps = header[7];
    const GPTConfig& c = out.config;
    if (c.vocab_size <= 0 || c.max_seq_len <= 0 || c.channels <= 0 || c.num_layers <= 0 ||
        c.num_heads <= 0 || c.vocab_size > (1 << 20) || c.channels > (1 << 14) ||
        c.max_seq_len > (1 << 16) || c.num_layers > 256) {
        error = "checkpoint " + path + " has an implausible model config";
        return false;
    }
    size_t n = num_parameters(c);
    out.params.assign(n, 0.0f);
    if (fread(out.params.data(), sizeof(float), n, f.get()) != n) {
        error = "checkpoint " + path + " holds fewer parameters than its config needs (" +
                std::to_string(n) + ")";
        return false;
    }
    char extra;
    if (fread(&extra, 1, 1, f.get()) == 1) {
        error = "checkpoint " + path + " has trailing bytes after the parameters";
        return false;
    }
    return true;
}

}  // namespace trainopt
