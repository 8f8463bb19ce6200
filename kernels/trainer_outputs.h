// The three files every trainer writes (the trainer contract, docs/task-format.md):
// OUT/losses.csv, OUT/final.ckpt and OUT/meta.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/gpt.h"

namespace trainopt {

struct TrainerRunInfo {
    std::string nonce;  // echoed for the harness
    uint64_t seed = 0;
    std::string task_name;
    double train_seconds = 0;  // advisory: the harness times from outside
    KernelProfile profile;     // advisory per-kernel wall time
};

// Returns "" on success, otherwise what could not be written.
std::string write_trainer_outputs(const std::string& out_dir, const std::vector<float>& losses,
                                  const GPTConfig& config, const std::vector<float>& params,
                                  const TrainerRunInfo& info);

}  // namespace trainopt
