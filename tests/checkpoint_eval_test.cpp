// `trainopt eval`: a checkpoint's held-out and training loss, and clear refusals of bad files.
#include "harness/checkpoint_eval.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "contract/checkpoint.h"
#include "contract/model_layout.h"
#include "harness/safe_file.h"
#include "harness/verify.h"
#include "tasks/data.h"
#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string tiny_task_file() {
    return testing::project_root() + "/tasks/test/tiny.toml";
}

TaskSpec tiny_task() {
    Result<TaskSpec> task = load_task(tiny_task_file());
    EXPECT_TRUE(task) << task.error();
    return *task;
}

// The seed's initial weights of the task's model, saved as trained for `steps` steps.
std::vector<float> write_initial_checkpoint(const TaskSpec& task, const std::string& path,
                                            int steps) {
    const GPTConfig config = gpt_config_of(task);
    std::vector<float> params(num_parameters(config));
    init_params(params.data(), config, 5);
    Status written = write_checkpoint(path, config, steps, params.data(), params.size());
    EXPECT_TRUE(written) << written.error();
    return params;
}

std::string file_bytes(const std::string& path) {
    return testing::read_text(path);
}

TEST(CheckpointEval, ParsesAnyStepCountFromTheHeader) {
    TempDir dir;
    const TaskSpec task = tiny_task();
    write_initial_checkpoint(task, dir.path + "/c.ckpt", 37);
    const std::string bytes = file_bytes(dir.path + "/c.ckpt");
    Result<Checkpoint> any = parse_checkpoint_any_steps(bytes, gpt_config_of(task));
    ASSERT_TRUE(any) << any.error();
    EXPECT_EQ(any->steps, 37);
    EXPECT_FALSE(parse_checkpoint(bytes, gpt_config_of(task), task.train.steps));
    std::string negative = bytes;
    const int32_t minus_one = -1;
    memcpy(negative.data() + 7 * sizeof(int32_t), &minus_one, sizeof(minus_one));
    Result<Checkpoint> refused = parse_checkpoint_any_steps(negative, gpt_config_of(task));
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().find("negative"), std::string::npos);
    EXPECT_FALSE(parse_checkpoint_any_steps(bytes.substr(0, 100), gpt_config_of(task)));
}

TEST(CheckpointEval, ComputesTheLossesWithTheReferenceKernels) {
    TempDir dir;
    const TaskSpec task = tiny_task();
    const std::vector<float> params = write_initial_checkpoint(task, dir.path + "/c.ckpt", 12);
    Result<CheckpointEvaluation> e = evaluate_checkpoint(task, dir.path + "/c.ckpt");
    ASSERT_TRUE(e) << e.error();
    EXPECT_EQ(e->steps, 12);
    EXPECT_EQ(e->batches, task.eval_batches);
    Result<TokenSplit> split = make_task_data(task);
    ASSERT_TRUE(split);
    EXPECT_DOUBLE_EQ(e->heldout_loss, heldout_loss(task, params, split->heldout));
    // untrained: about ln(vocab) on either split
    EXPECT_NEAR(e->heldout_loss, std::log(task.model.vocab_size), 0.5);
    EXPECT_NEAR(e->training_loss, std::log(task.model.vocab_size), 0.5);
    // a relative path is read from the working directory
    const std::string cwd = fs::current_path();
    fs::current_path(dir.path);
    Result<CheckpointEvaluation> relative = evaluate_checkpoint(task, "c.ckpt");
    fs::current_path(cwd);
    ASSERT_TRUE(relative) << relative.error();
    EXPECT_DOUBLE_EQ(relative->heldout_loss, e->heldout_loss);
}

TEST(CheckpointEval, RefusesBadFilesNamingThem) {
    TempDir dir;
    const TaskSpec task = tiny_task();
    const std::string good = dir.path + "/good.ckpt";
    write_initial_checkpoint(task, good, 3);
    const std::string bytes = file_bytes(good);
    auto error_of = [&](const std::string& path) {
        Result<CheckpointEvaluation> e = evaluate_checkpoint(task, path);
        EXPECT_FALSE(e) << path;
        return e ? std::string() : e.error();
    };

    EXPECT_NE(error_of(dir.path + "/missing.ckpt").find("missing.ckpt"), std::string::npos);

    testing::write_text(dir.path + "/truncated.ckpt", bytes.substr(0, bytes.size() - 4));
    EXPECT_NE(error_of(dir.path + "/truncated.ckpt").find("bytes"), std::string::npos);
    testing::write_text(dir.path + "/header.ckpt", bytes.substr(0, 100));
    EXPECT_NE(error_of(dir.path + "/header.ckpt").find("shorter than its 256-byte header"),
              std::string::npos);
    testing::write_text(dir.path + "/long.ckpt", bytes + "x");
    EXPECT_NE(error_of(dir.path + "/long.ckpt").find("long.ckpt"), std::string::npos);

    fs::create_symlink(good, dir.path + "/link.ckpt");
    EXPECT_NE(error_of(dir.path + "/link.ckpt").find("link.ckpt"), std::string::npos);
    fs::create_directory(dir.path + "/dir.ckpt");
    EXPECT_NE(error_of(dir.path + "/dir.ckpt").find("dir.ckpt"), std::string::npos);
    EXPECT_NE(error_of(dir.path + "/").find("directory"), std::string::npos);

    // another model's checkpoint
    TaskSpec other = task;
    other.model.d_model = 2 * task.model.d_model;
    write_initial_checkpoint(other, dir.path + "/other.ckpt", 3);
    std::string shape = error_of(dir.path + "/other.ckpt");
    EXPECT_TRUE(shape.find("other.ckpt") != std::string::npos) << shape;

    std::string nan = bytes;
    const float bad = std::numeric_limits<float>::quiet_NaN();
    memcpy(nan.data() + kCheckpointHeaderBytes + 8, &bad, sizeof(bad));
    testing::write_text(dir.path + "/nan.ckpt", nan);
    EXPECT_NE(error_of(dir.path + "/nan.ckpt").find("non-finite"), std::string::npos);

    std::string magic = bytes;
    magic[0] ^= 1;
    testing::write_text(dir.path + "/magic.ckpt", magic);
    EXPECT_NE(error_of(dir.path + "/magic.ckpt").find("magic"), std::string::npos);
}

TEST(CheckpointEval, CommandLine) {
    TempDir dir;
    const TaskSpec task = tiny_task();
    write_initial_checkpoint(task, dir.path + "/final.ckpt", 150);
    auto r = testing::run_cli({"eval", dir.path + "/final.ckpt", "--task", tiny_task_file()},
                              dir.path + "/log1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("150 steps trained"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("held-out loss: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("training loss: "), std::string::npos) << r.output;

    r = testing::run_cli({"eval", dir.path + "/final.ckpt", "--task", tiny_task_file(), "--json"},
                         dir.path + "/log2");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.output;
    EXPECT_EQ(j["steps"], 150);
    EXPECT_EQ(j["task"], "tiny");
    EXPECT_GT(j["heldout_loss"].get<double>(), 0);
    EXPECT_GT(j["training_loss"].get<double>(), 0);

    testing::write_text(dir.path + "/short.ckpt", "CKPT");
    r = testing::run_cli({"eval", dir.path + "/short.ckpt", "--task", tiny_task_file()},
                         dir.path + "/log3");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("trainopt: error: checkpoint"), std::string::npos) << r.output;

    r = testing::run_cli({"eval", dir.path + "/final.ckpt", "--task", dir.path + "/no.toml"},
                         dir.path + "/log4");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("no.toml"), std::string::npos) << r.output;

    r = testing::run_cli({"eval", dir.path + "/final.ckpt"}, dir.path + "/log5");
    EXPECT_NE(r.exit_code, 0);  // a usage error
    EXPECT_NE(r.output.find("--task is required"), std::string::npos) << r.output;
}

// The baseline trainer learns the real-text test task, and eval measures the checkpoint it wrote
// as verification would.
TEST(CheckpointEval, MeasuresWhatTheBaselineLearnedFromRealText) {
    TempDir dir;
    Result<TaskSpec> task =
        load_task(testing::project_root() + "/tasks/text-test/licenses-tiny.toml");
    ASSERT_TRUE(task) << task.error();
    Status prepared = prepare_task_data(*task, dir.path + "/data");
    ASSERT_TRUE(prepared) << prepared.error();
    auto r =
        testing::run_command({TRAINOPT_TRAINER, "--task", task->file, "--data", dir.path + "/data",
                              "--seed", "3", "--out", dir.path + "/out", "--nonce", "n"},
                             dir.path + "/train.log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = testing::run_cli({"eval", dir.path + "/out/final.ckpt", "--task", task->file, "--json"},
                         dir.path + "/eval.log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.output;
    EXPECT_EQ(j["steps"], task->train.steps);

    Result<TokenSplit> split = make_task_data(*task);
    ASSERT_TRUE(split);
    const double unigram = unigram_entropy(split->train, 256);
    Result<std::string> bytes = read_file_beneath(dir.path + "/out", "final.ckpt", {1 << 20, 10});
    ASSERT_TRUE(bytes) << bytes.error();
    Result<Checkpoint> checkpoint = parse_checkpoint(*bytes, gpt_config_of(*task), 1000);
    ASSERT_TRUE(checkpoint) << checkpoint.error();
    EXPECT_DOUBLE_EQ(j["heldout_loss"].get<double>(),
                     heldout_loss(*task, checkpoint->params, split->heldout));
    // the tiny model learns the training text (2.45 nats) far better than the unseen held-out
    // license (3.01), against a unigram entropy of 3.19 and ln 256 = 5.55 untrained
    EXPECT_LT(j["heldout_loss"].get<double>(), unigram) << "unigram entropy " << unigram;
    EXPECT_LT(j["training_loss"].get<double>(), 0.9 * unigram) << "unigram entropy " << unigram;
}

}  // namespace
}  // namespace trainopt
