// state.bin: the whole training state between two steps, what a trainer resumes from (--resume)
// and what a segment run writes (docs/task-format.md, "Segments"). A 256-byte header of 64
// little-endian int32, then the fp32 parameters, AdamW first moments and second moments, each in
// the canonical layout of contract/model_layout.h.
//   header[0] = kTrainingStateMagic, header[1] = kTrainingStateVersion,
//   header[2..6] = vocab_size, max_seq_len, channels, num_layers, num_heads,
//   header[7] = steps taken (the next step's index, counted from 0), the rest zero.
// The data position is not stored: step s trains on the seed's s-th batch (contract/batches.h).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "contract/model_layout.h"
#include "contract/result.h"

namespace trainopt {

constexpr int kTrainingStateMagic = 0x41545354;  // "TSTA"
constexpr int kTrainingStateVersion = 1;

struct TrainingState {
    int step = 0;               // AdamW steps taken
    std::vector<float> params;  // num_parameters(config) each
    std::vector<float> m;
    std::vector<float> v;
};

// Exactly the size of a state file of this model.
size_t training_state_bytes(const GPTConfig& config);

// The state file's bytes; params, m and v hold num_parameters(config) floats each.
std::string training_state_file(const GPTConfig& config, int step, const float* params,
                                const float* m, const float* v);

Status write_training_state(const std::string& path, const GPTConfig& config, int step,
                            const float* params, const float* m, const float* v);

// A state file's bytes, which must describe exactly `expected`: the header is checked before
// anything is sized from it, the size must be exact, every value finite and every second moment
// non-negative. `name` names the file in messages.
Result<TrainingState> parse_training_state(const std::string& bytes, const GPTConfig& expected,
                                           const std::string& name);

}  // namespace trainopt
