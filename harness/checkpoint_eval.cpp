#include "harness/checkpoint_eval.h"

#include <filesystem>

#include "contract/checkpoint.h"
#include "contract/model_layout.h"
#include "harness/safe_file.h"
#include "harness/verify.h"
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
    // heldout_loss reads the first eval_batches * B windows of the tokens it is given
    out.training_loss = heldout_loss(task, checkpoint->params, split->train);
    return out;
}

}  // namespace trainopt
