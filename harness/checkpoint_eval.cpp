#include "harness/checkpoint_eval.h"

#include <algorithm>
#include <filesystem>

#include "contract/checkpoint.h"
#include "contract/model_layout.h"
#include "harness/safe_file.h"
#include "harness/verify.h"
#include "kernels/gpt.h"
#include "tasks/data.h"

namespace trainopt {

namespace fs = std::filesystem;

namespace {

constexpr double kReadDeadlineSeconds = 30;

// The checkpoint's bytes: its last component must be a regular file, not a link, and no larger
// than a checkpoint of the task's model.
Result<Checkpoint> read_checkpoint(const TaskSpec& task, const std::string& path) {
    const fs::path p(path);
    if (!p.has_filename()) return failure("checkpoint " + path + " names a directory");
    const std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
    const GPTConfig config = gpt_config_of(task);
    Result<std::string> bytes = read_file_beneath(dir, p.filename().string(),
                                                  {checkpoint_bytes(config), kReadDeadlineSeconds});
    if (!bytes) return failure("checkpoint " + path + ": " + bytes.error());
    Result<Checkpoint> checkpoint = parse_checkpoint_any_steps(*bytes, config);
    if (!checkpoint) {
        return failure("checkpoint " + path + " does not fit task " + task.name + ": " +
                       checkpoint.error());
    }
    return checkpoint;
}

// Mean loss, with the reference kernels, on eval_batches batches of B windows of T tokens (and
// their next-token targets) spread evenly over `tokens`: a training loss that samples the whole
// training split, not only its start.
double spread_window_loss(const TaskSpec& task, const std::vector<float>& params,
                          const std::vector<int>& tokens) {
    const int B = task.train.batch, T = task.model.context;
    const size_t windows = (size_t)task.eval_batches * B;
    const size_t last_start = tokens.size() - T - 1;  // make_task_data keeps the split larger
    const size_t stride = windows > 1 ? last_start / (windows - 1) : 0;
    GPT model;
    gpt_create(model, gpt_config_of(task), B, T, reference_kernels());
    model.params_memory = params;
    std::vector<int> inputs(B * T), targets(B * T);
    double total = 0;
    for (int batch = 0; batch < task.eval_batches; batch++) {
        for (int b = 0; b < B; b++) {
            const size_t start = std::min(last_start, ((size_t)batch * B + b) * stride);
            for (int t = 0; t < T; t++) {
                inputs[b * T + t] = tokens[start + t];
                targets[b * T + t] = tokens[start + t + 1];
            }
        }
        gpt_forward(model, inputs.data(), targets.data());
        total += model.mean_loss;
    }
    return total / task.eval_batches;
}

}  // namespace

Result<CheckpointEvaluation> evaluate_checkpoint(const TaskSpec& task, const std::string& path) {
    Result<Checkpoint> checkpoint = read_checkpoint(task, path);
    if (!checkpoint) return failure(checkpoint.error());
    Result<TokenSplit> split = make_task_data(task);
    if (!split) return failure(split.error());
    CheckpointEvaluation out;
    out.steps = checkpoint->steps;
    out.batches = task.eval_batches;
    out.batch = task.train.batch;
    out.context = task.model.context;
    out.heldout_loss = heldout_loss(task, checkpoint->params, split->heldout);
    out.training_loss = spread_window_loss(task, checkpoint->params, split->train);
    return out;
}

}  // namespace trainopt
