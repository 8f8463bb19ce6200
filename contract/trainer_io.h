// The trainer contract (docs/task-format.md): how the harness calls a trainer and what the
// trainer writes. Every trainer, the baseline's and a submission's, takes
//
//   trainopt-train --task T.toml --data DIR --seed N --out DIR --nonce X [--threads K]
//                  [--resume STATE] [--until STEP]
//
// reads DIR/train.bin and writes OUT/losses.csv, OUT/final.ckpt and OUT/meta.json. With --resume
// or --until the run is a segment: it starts from the state file STATE (step s; without it, from
// the seed's initial weights at step 0), trains steps s .. STEP-1 (STEP defaults to the task's
// step count) on the same batches the whole run gives those steps, and writes OUT/state.bin
// (contract/training_state.h) instead of final.ckpt. Trusted: the verifier parses those files
// with the functions here (after reading them safely, harness/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "contract/model_layout.h"
#include "contract/result.h"
#include "contract/training_state.h"
#include "tasks/task_spec.h"

namespace trainopt {

struct TrainerArgs {
    std::string task_path;
    std::string data_dir;
    std::string out_dir;
    std::string nonce;        // echoed into meta.json
    uint64_t seed = 0;        // init and batch order
    int threads = 0;          // cores the trainer may use; 0: not given
    std::string resume_path;  // --resume: the state to start from; empty: the seed's init
    int until_step = 0;       // --until: the step to stop before; 0: the task's step count

    bool is_segment() const { return !resume_path.empty() || until_step > 0; }
};

// Parses the command line. Returns the args, or the exit code the trainer should return now
// (0 after --help, non-zero after a usage error, with the message printed).
std::expected<TrainerArgs, int> parse_trainer_args(int argc, char** argv,
                                                   const std::string& description);

// What a trainer trains on: the task, its model, the training tokens and the steps to train.
struct TrainerInputs {
    TaskSpec task;
    GPTConfig config;
    std::vector<int> train_tokens;
    int start_step = 0;  // the first step to train (the resumed state's step count)
    int stop_step = 0;   // the step to stop before
    bool segment = false;
    bool resumed = false;  // start from `start`, not from the seed's initial weights
    TrainingState start;   // when resumed
};

// Loads the task, DIR/train.bin and the state to resume from, and creates the output directory.
Result<TrainerInputs> load_trainer_inputs(const TrainerArgs& args);

// What meta.json says besides the nonce and step count; advisory, the harness times from outside.
struct TrainerRunInfo {
    std::string nonce;
    uint64_t seed = 0;
    std::string task_name;
    double train_seconds = 0;
    std::vector<std::pair<std::string, double>> kernel_seconds;  // per-kernel wall time
};

// What a run trained: one loss per step from the inputs' start_step, and the state it ended in
// (num_parameters floats each).
struct TrainedState {
    const float* params = nullptr;
    const float* m = nullptr;
    const float* v = nullptr;
};

// Writes losses.csv (rows numbered from start_step), meta.json, and final.ckpt for a whole run
// or state.bin for a segment.
Status write_trainer_outputs(const std::string& out_dir, const TrainerInputs& inputs,
                             const std::vector<float>& losses, const TrainedState& state,
                             const TrainerRunInfo& info);

// The whole-run form trainers written before segments call: they cannot resume, and a segment
// request to them fails verification with a clear reason.
Status write_trainer_outputs(const std::string& out_dir, const std::vector<float>& losses,
                             const GPTConfig& config, const std::vector<float>& params,
                             const TrainerRunInfo& info);

// The most each output may hold for a task, in bytes: losses.csv by the step count, final.ckpt
// exactly the task's parameter layout, meta.json a small constant.
struct OutputCaps {
    size_t losses_csv = 0;
    size_t final_ckpt = 0;
    size_t state_bin = 0;
    size_t meta_json = 0;
};
OutputCaps output_caps(const TaskSpec& task);

// losses.csv: the header "step,loss", then exactly `steps` rows "i,loss" in order, i counting
// from first_step, every loss finite.
Result<std::vector<float>> parse_losses(const std::string& text, int first_step, int steps);
inline Result<std::vector<float>> parse_losses(const std::string& text, int steps) {
    return parse_losses(text, 0, steps);
}

}  // namespace trainopt
