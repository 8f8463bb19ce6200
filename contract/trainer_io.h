// The trainer contract (docs/task-format.md): how the harness calls a trainer and what the
// trainer writes. Every trainer, the baseline's and a submission's, takes
//
//   trainopt-train --task T.toml --data DIR --seed N --out DIR --nonce X [--threads K]
//
// reads DIR/train.bin and writes OUT/losses.csv, OUT/final.ckpt and OUT/meta.json. Trusted: the
// verifier parses those files with the functions here (after reading them safely, harness/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "contract/model_layout.h"
#include "contract/result.h"
#include "tasks/task_spec.h"

namespace trainopt {

struct TrainerArgs {
    std::string task_path;
    std::string data_dir;
    std::string out_dir;
    std::string nonce;  // echoed into meta.json
    uint64_t seed = 0;  // init and batch order
    int threads = 0;    // cores the trainer may use; 0: not given
};

// Parses the command line. Returns the args, or the exit code the trainer should return now
// (0 after --help, non-zero after a usage error, with the message printed).
std::expected<TrainerArgs, int> parse_trainer_args(int argc, char** argv,
                                                   const std::string& description);

// What a trainer trains on: the task, its model and the training tokens.
struct TrainerInputs {
    TaskSpec task;
    GPTConfig config;
    std::vector<int> train_tokens;
};

// Loads the task and DIR/train.bin, and creates the output directory.
Result<TrainerInputs> load_trainer_inputs(const TrainerArgs& args);

// What meta.json says besides the nonce and step count; advisory, the harness times from outside.
struct TrainerRunInfo {
    std::string nonce;
    uint64_t seed = 0;
    std::string task_name;
    double train_seconds = 0;
    std::vector<std::pair<std::string, double>> kernel_seconds;  // per-kernel wall time
};

Status write_trainer_outputs(const std::string& out_dir, const std::vector<float>& losses,
                             const GPTConfig& config, const std::vector<float>& params,
                             const TrainerRunInfo& info);

// The most each output may hold for a task, in bytes: losses.csv by the step count, final.ckpt
// exactly the task's parameter layout, meta.json a small constant.
struct OutputCaps {
    size_t losses_csv = 0;
    size_t final_ckpt = 0;
    size_t meta_json = 0;
};
OutputCaps output_caps(const TaskSpec& task);

// losses.csv: the header "step,loss", then exactly `steps` rows "i,loss" in order, every loss
// finite.
Result<std::vector<float>> parse_losses(const std::string& text, int steps);

}  // namespace trainopt
