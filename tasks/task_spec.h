// Task specs (tasks/**/*.toml): model shape, data, training schedule and verification tolerances.
// See docs/task-format.md for the file format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "contract/result.h"

namespace trainopt {

struct ModelSpec {
    int vocab_size = 0;
    int context = 0;  // sequence length T used in training
    int d_model = 0;
    int layers = 0;
    int heads = 0;
};

struct DataSpec {
    std::string kind;        // "synthetic" or "text"
    int order = 1;           // synthetic: Markov order (1 or 2)
    int branching = 4;       // synthetic: successors per context
    int64_t tokens = 0;      // synthetic: corpus length
    uint64_t data_seed = 1;  // synthetic: fixes the corpus (not the training seed)
    std::string path;        // text: the first of `paths` (a single-file task's `path` key)
    double heldout_fraction = 0.1;
    // text: the files, concatenated in this order into one byte-level corpus; each resolved
    // relative to the task file. From the key `paths`, or `path` for a single file.
    std::vector<std::string> paths;
    // text, optional: SHA-256 (64 lowercase hex digits) of the concatenation, the text the task
    // was calibrated on; make_task_data refuses any other text.
    std::string sha256;
};

struct TrainSpec {
    int batch = 0;
    int steps = 0;
    float lr = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;
};

// Verification tolerances; the defaults are calibrated values (listed in docs/task-format.md).
struct Tolerances {
    // check = "trajectory": the whole run against the reference run of the same seed
    double loss_abs = 1e-4;     // max |loss_sub(step) - loss_ref(step)| over all steps, nats
    double heldout_abs = 5e-5;  // |heldout_sub - heldout_ref|, nats
    double weights_rel = 1e-3;  // ||w_sub - w_ref|| / ||w_ref - w_init||
    // check = "local": windows of steps against the reference kernels started from the
    // submission's own state, and the whole run's quality
    double step_loss_abs = 1e-5;   // max |loss_sub - loss_ref| over a window's steps, nats
    double step_state_rel = 1e-3;  // weights and moments: ||x_sub - x_ref|| / ||x_ref - x_start||
    double heldout_band = 0.05;    // |heldout_sub - heldout_ref| of the whole run, nats
};

// How a run is verified (docs/task-format.md, [verify]). "trajectory": the whole run's losses,
// held-out loss and weights against the reference run's, for tasks where fp32 reorderings stay
// small over the run. "local": for chaotic tasks, where they grow; the run is replayed untimed in
// segments, which must reproduce the timed run bit for bit, windows of steps picked after the timed
// run are checked against the reference kernels from the submission's own state, and the whole
// run's held-out loss must stay within a band of the reference's.
enum class CheckKind { trajectory, local };

struct VerifySpec {
    CheckKind check = CheckKind::trajectory;
    int windows = 4;       // local: windows checked per repetition
    int window_steps = 4;  // local: steps in a window
};

struct TaskSpec {
    std::string name;
    std::string description;
    std::string hot_spot;  // what the task stresses, for reports
    std::string file;      // where it was loaded from
    ModelSpec model;
    DataSpec data;
    TrainSpec train;
    int eval_batches = 4;  // held-out batches the trusted evaluator uses
    Tolerances tolerances;
    VerifySpec verify;
};

// Parses and validates a task file. A failure names the file and the offending key.
Result<TaskSpec> load_task(const std::string& path);

// The same from a task file's contents: `file` names it in messages, resolves a relative text
// data path, and becomes TaskSpec::file (where a trainer reads the task).
Result<TaskSpec> load_task_text(const std::string& text, const std::string& file);

// load_task in the form trainers written before the Result form call it: existing submissions
// build against this tree and must keep compiling. Everything here uses the Result form.
bool load_task(const std::string& path, TaskSpec& out, std::string& error);

// A suite is a directory of task files, or a name under <project>/tasks/.
struct Suite {
    std::string name;
    std::vector<TaskSpec> tasks;
};
Result<Suite> load_suite(const std::string& name_or_dir, const std::string& tasks_root);

// A suite from task files' contents (e.g. compiled into a binary), loaded in the order given.
struct TaskText {
    std::string file;  // as for load_task_text
    std::string text;
};
Result<Suite> load_suite_texts(const std::string& name, const std::vector<TaskText>& files);

// FLOPs of one training step (forward + backward): 6 * matmul params * tokens + attention
// (causal q.k and att.v, forward and backward), a multiply-add counting 2. A LOWER BOUND on the
// work every implementation must do: only multiply-adds no submission can skip are counted (the
// causal half of attention, no operand structurally zero or one; no softmax, layernorm, GELU or
// AdamW). The speed-of-light backstop (scoring/report.h) relies on that to invalidate runs that
// are faster than physics; tests/backstop_test.cpp checks it against the model's kernel calls.
double training_step_flops(const TaskSpec& task);

}  // namespace trainopt
