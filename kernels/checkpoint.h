// final.ckpt: a 256-byte header of 64 little-endian int32 followed by the fp32 parameters in the
// canonical layout of kernels/gpt.h.
//   header[0] = kCheckpointMagic, header[1] = kCheckpointVersion,
//   header[2..6] = vocab_size, max_seq_len, channels, num_layers, num_heads,
//   header[7] = steps trained, the rest zero.
#pragma once

#include <string>
#include <vector>

#include "kernels/gpt.h"

namespace trainopt {

constexpr int kCheckpointMagic = 0x54504B43;  // "CKPT"
constexpr int kCheckpointVersion = 1;

struct Checkpoint {
    GPTConfig config;
    int steps = 0;
    std::vector<float> params;
};

// Returns an empty string on success, otherwise what went wrong.
std::string write_checkpoint(const std::string& path, const GPTConfig& config, int steps,
                             const float* params, size_t num_params);
// Reads and validates the header and size; on failure returns the reason in `error`.
bool read_checkpoint(const std::string& path, Checkpoint& out, std::string& error);

}  // namespace trainopt
