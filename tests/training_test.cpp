// The model trains, deterministically: loss falls well below the unigram entropy, the same
// seed gives bit-identical outputs, checkpoints round-trip.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "contract/batches.h"
#include "contract/checkpoint.h"
#include "harness/verify.h"
#include "kernels/gpt.h"
#include "kernels/registry.h"
#include "tasks/data.h"
#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;

TaskSpec tiny_task() {
    Result<TaskSpec> task = load_task(testing::project_root() + "/tasks/test/tiny.toml");
    EXPECT_TRUE(task) << task.error();
    return task.value_or(TaskSpec{});
}

TEST(SyntheticData, IsDeterministicAndStructured) {
    auto a = generate_markov_corpus(64, 1, 4, 5000, 3);
    auto b = generate_markov_corpus(64, 1, 4, 5000, 3);
    auto c = generate_markov_corpus(64, 1, 4, 5000, 4);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    for (int t : a) ASSERT_TRUE(t >= 0 && t < 64);
    EXPECT_GT(unigram_entropy(a, 64), 3.0);  // spread over the vocabulary
}

TEST(Training, LossFallsWellBelowUnigramEntropy) {
    TaskSpec task = tiny_task();
    task.train.steps = 300;
    Result<TokenSplit> loaded = make_task_data(task);
    ASSERT_TRUE(loaded) << loaded.error();
    const TokenSplit& split = *loaded;
    const double unigram = unigram_entropy(split.train, task.model.vocab_size);

    const GPTConfig config = gpt_config_of(task);
    const int B = task.train.batch, T = task.model.context;
    GPT model;
    gpt_create(model, config, B, T, trainer_kernels());
    init_params(model.params_memory.data(), config, 42);
    const std::vector<float> init = model.params_memory;
    BatchSampler batches(split.train, 42, B, T);
    std::vector<int> inputs(B * T), targets(B * T);
    double last_losses = 0;
    for (int step = 0; step < task.train.steps; step++) {
        batches.next(inputs.data(), targets.data());
        gpt_forward(model, inputs.data(), targets.data());
        gpt_zero_grad(model);
        gpt_backward(model, inputs.data(), targets.data());
        gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                   task.train.weight_decay, step + 1);
        if (step >= task.train.steps - 20) last_losses += model.mean_loss / 20.0;
    }
    EXPECT_LT(last_losses, 0.65 * unigram) << "unigram entropy " << unigram;
    const double heldout_trained = heldout_loss(task, model.params_memory, split.heldout);
    const double heldout_init = heldout_loss(task, init, split.heldout);
    EXPECT_LT(heldout_trained, 0.7 * unigram);
    EXPECT_GT(heldout_init, heldout_trained + 1.0);
}

TEST(Training, SameSeedGivesBitIdenticalOutputs) {
    TempDir dir;
    TaskSpec task = tiny_task();
    Status prepared = prepare_task_data(task, dir.path + "/data");
    ASSERT_TRUE(prepared) << prepared.error();
    auto train = [&](const std::string& out, const std::string& seed) {
        return testing::run_command(
            {TRAINOPT_TRAINER, "--task", task.file, "--data", dir.path + "/data", "--seed", seed,
             "--out", out, "--nonce", "n"},
            out + ".log");
    };
    ASSERT_EQ(train(dir.path + "/a", "7").exit_code, 0);
    ASSERT_EQ(train(dir.path + "/b", "7").exit_code, 0);
    ASSERT_EQ(train(dir.path + "/c", "8").exit_code, 0);
    using testing::read_text;
    EXPECT_EQ(read_text(dir.path + "/a/losses.csv"), read_text(dir.path + "/b/losses.csv"));
    EXPECT_EQ(read_text(dir.path + "/a/final.ckpt"), read_text(dir.path + "/b/final.ckpt"));
    EXPECT_NE(read_text(dir.path + "/a/final.ckpt"), read_text(dir.path + "/c/final.ckpt"));
    std::string meta = read_text(dir.path + "/a/meta.json");
    EXPECT_NE(meta.find("\"nonce\": \"n\""), std::string::npos);
}

TEST(Checkpoint, RoundTripsAndRejectsDamage) {
    TempDir dir;
    const GPTConfig config{16, 8, 4, 1, 2};
    std::vector<float> params(num_parameters(config));
    init_params(params.data(), config, 1);
    const std::string path = dir.path + "/x.ckpt";
    ASSERT_TRUE(write_checkpoint(path, config, 5, params.data(), params.size()));
    const std::string bytes = testing::read_text(path);
    EXPECT_EQ(bytes.size(), checkpoint_bytes(config));
    auto ckpt = parse_checkpoint(bytes, config, 5);
    ASSERT_TRUE(ckpt) << ckpt.error();
    EXPECT_EQ(ckpt->steps, 5);
    EXPECT_EQ(ckpt->params, params);
    EXPECT_EQ(ckpt->config.channels, 4);

    auto expect_refused = [&](const std::string& damaged, const GPTConfig& expected, int steps,
                              const std::string& why) {
        auto r = parse_checkpoint(damaged, expected, steps);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().find(why), std::string::npos) << r.error();
    };
    expect_refused(bytes.substr(0, 256 + 10), config, 5, "needs exactly");
    expect_refused(bytes + "x", config, 5, "needs exactly");
    expect_refused("garbage that is not a checkpoint", config, 5, "shorter than its 256-byte");
    expect_refused(std::string(300, '\0'), config, 5, "bad magic");
    expect_refused(bytes, GPTConfig{16, 8, 4, 2, 2}, 5, "different shape");
    expect_refused(bytes, config, 6, "says 5 steps were trained");
    std::string nan_params = bytes;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(nan_params.data() + 256, &nan, sizeof(nan));
    expect_refused(nan_params, config, 5, "non-finite");
}

TEST(ParamLayout, MatchesTheDocumentedOrder) {
    const GPTConfig config{10, 6, 4, 2, 2};
    auto sizes = param_tensor_sizes(config);
    EXPECT_EQ(sizes[0], 10u * 4);       // wte
    EXPECT_EQ(sizes[1], 6u * 4);        // wpe
    EXPECT_EQ(sizes[4], 2u * 12 * 4);   // qkvw (L, 3C, C)
    EXPECT_EQ(sizes[12], 2u * 4 * 16);  // fcprojw (L, C, 4C)
    EXPECT_EQ(num_parameters(config), 10u * 4 + 6 * 4 + 2 * 12 * 16 + 2 * 13 * 4 + 2 * 4);
}

}  // namespace
}  // namespace trainopt
