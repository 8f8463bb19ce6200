// final.ckpt: a 256-byte header of 64 little-endian int32 followed by the fp32 parameters in the
// canonical layout of contract/model_layout.h.
//   header[0] = kCheckpointMagic, header[1] = kCheckpointVersion,
//   header[2..6] = vocab_size, max_seq_len, channels, num_layers, num_heads,
//   header[7] = steps trained, the rest zero.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "contract/model_layout.h"
#include "contract/result.h"

namespace trainopt {

constexpr int kCheckpointMagic = 0x54504B43;  // "CKPT"
constexpr int kCheckpointVersion = 1;
constexpr size_t kCheckpointHeaderBytes = 256;

struct Checkpoint {
    GPTConfig config;
    int steps = 0;
    std::vector<float> params;
};

// The 256-byte header final.ckpt and state.bin (contract/training_state.h) start with: 64
// int32, [0] the file's magic, [1] its version, [2..6] the model's shape, [7] the steps.
constexpr int kModelHeaderInts = kCheckpointHeaderBytes / sizeof(int32_t);
std::array<int32_t, kModelHeaderInts> model_file_header(int magic, int version,
                                                        const GPTConfig& config, int steps);
// The header's [2..6] describe exactly this model.
bool header_has_shape(const int32_t* header, const GPTConfig& config);

// Exactly the size of a checkpoint of this model.
size_t checkpoint_bytes(const GPTConfig& config);

Status write_checkpoint(const std::string& path, const GPTConfig& config, int steps,
                        const float* params, size_t num_params);

// A checkpoint's bytes, which must describe exactly `expected` trained for `steps` steps: the
// header is checked before anything is sized from it, the size must be exact and every
// parameter finite.
Result<Checkpoint> parse_checkpoint(const std::string& bytes, const GPTConfig& expected, int steps);

// The same for a checkpoint trained for any number of steps (`trainopt eval`): the step count is
// taken from the header, which must hold a non-negative one.
Result<Checkpoint> parse_checkpoint_any_steps(const std::string& bytes, const GPTConfig& expected);

}  // namespace trainopt
