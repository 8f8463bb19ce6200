// The model trains, deterministically: loss falls well below the unigram entropy, the same
// seed gives bit-identical outputs, a run cut into segments is the whole run, checkpoints and
// training states round-trip.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

#include "contract/batches.h"
#include "contract/checkpoint.h"
#include "contract/training_state.h"
#include "harness/step_check.h"
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

TEST(Training, SegmentsReproduceTheWholeRunBitForBit) {
    // what step-local verification relies on (harness/replay.h): a run cut into segments, each
    // resuming from the state the previous one wrote, ends where the whole run ends, and the
    // reference kernels' steps in the harness (run_reference_steps) are the trainer's too
    TempDir dir;
    TaskSpec task = tiny_task();
    Status prepared = prepare_task_data(task, dir.path + "/data");
    ASSERT_TRUE(prepared) << prepared.error();
    auto train = [&](const std::string& out, std::vector<std::string> extra) {
        std::vector<std::string> argv = {
            TRAINOPT_TRAINER, "--task", task.file, "--data", dir.path + "/data", "--seed", "7",
            "--out",          out,      "--nonce", "n"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return testing::run_command(argv, out + ".log").exit_code;
    };
    const int steps = task.train.steps;
    ASSERT_EQ(train(dir.path + "/whole", {}), 0);
    ASSERT_EQ(train(dir.path + "/s1", {"--until", "40"}), 0);
    ASSERT_EQ(train(dir.path + "/s2", {"--resume", dir.path + "/s1/state.bin", "--until", "43"}),
              0);
    ASSERT_EQ(train(dir.path + "/s3", {"--resume", dir.path + "/s2/state.bin"}), 0);
    using testing::read_text;
    const GPTConfig config = gpt_config_of(task);
    auto s2 = parse_training_state(read_text(dir.path + "/s2/state.bin"), config, "s2");
    auto s3 = parse_training_state(read_text(dir.path + "/s3/state.bin"), config, "s3");
    auto whole = parse_checkpoint(read_text(dir.path + "/whole/final.ckpt"), config, steps);
    ASSERT_TRUE(s2 && s3 && whole);
    EXPECT_EQ(s2->step, 43);
    EXPECT_EQ(s3->step, steps);
    EXPECT_EQ(s3->params, whole->params);
    auto whole_losses = parse_losses(read_text(dir.path + "/whole/losses.csv"), steps);
    auto s2_losses = parse_losses(read_text(dir.path + "/s2/losses.csv"), 40, 3);
    ASSERT_TRUE(whole_losses && s2_losses) << s2_losses.error();
    for (int i = 0; i < 3; i++) EXPECT_EQ((*s2_losses)[i], (*whole_losses)[40 + i]);
    EXPECT_FALSE(std::filesystem::exists(dir.path + "/s2/final.ckpt"));

    Result<TokenSplit> split = make_task_data(task);
    ASSERT_TRUE(split);
    auto s1 = parse_training_state(read_text(dir.path + "/s1/state.bin"), config, "s1");
    ASSERT_TRUE(s1);
    const ReferenceSteps reference = run_reference_steps(task, split->train, 7, *s1, 3);
    EXPECT_EQ(reference.end.params, s2->params);
    EXPECT_EQ(reference.end.m, s2->m);
    EXPECT_EQ(reference.end.v, s2->v);
    const WindowDeviation d = compare_window({40, 3}, *s1, reference, *s2_losses, *s2, config);
    EXPECT_EQ(d.max_loss_diff, 0.0);
    EXPECT_EQ(d.state_rel(), 0.0);

    // a segment past the task's end, or ending where it starts, is a usage error
    EXPECT_NE(train(dir.path + "/bad", {"--until", std::to_string(steps + 1)}), 0);
    EXPECT_NE(train(dir.path + "/bad2", {"--resume", dir.path + "/s2/state.bin", "--until", "43"}),
              0);
}

TEST(Training, TheAdamStepOfTrainingStaysFarAboveTheFrozenFloor) {
    // kMinAdamStep rejects window states training cannot continue from; the reference's own
    // training of the step-locally checked test tasks keeps its AdamW step 10x above it on every
    // step, and the all-zero model's step is 0
    const char* env = std::getenv("TRAINOPT_ADAM_STEP_TASKS");  // more task files, ':'-separated
    std::vector<std::string> files = {
        testing::project_root() + "/tests/cheats/chaotic/tiny-local.toml",
        testing::project_root() + "/tasks/text-test/licenses-tiny.toml"};
    for (std::string rest = env ? env : ""; !rest.empty();) {
        const size_t colon = rest.find(':');
        files.push_back(rest.substr(0, colon));
        rest = colon == std::string::npos ? "" : rest.substr(colon + 1);
    }
    for (const std::string& file : files) {
        Result<TaskSpec> task = load_task(file);
        ASSERT_TRUE(task) << task.error();
        Result<TokenSplit> split = make_task_data(*task);
        ASSERT_TRUE(split) << split.error();
        TrainingState state = initial_state(gpt_config_of(*task), 3);
        double smallest = HUGE_VAL;
        int where = -1;
        for (int step = 0; step < task->train.steps; step++) {
            state = run_reference_steps(*task, split->train, 3, state, 1).end;
            const double rms = adam_step_rms(state, task->train);
            if (rms < smallest) {
                smallest = rms;
                where = step;
            }
        }
        printf("%s: smallest AdamW step %.3g at step %d\n", task->name.c_str(), smallest, where);
        EXPECT_GE(smallest, 10 * kMinAdamStep) << task->name << " at step " << where;
        TrainingState zero = initial_state(gpt_config_of(*task), 3);
        std::fill(zero.params.begin(), zero.params.end(), 0.0f);
        zero = run_reference_steps(*task, split->train, 3, zero, 1).end;
        EXPECT_EQ(adam_step_rms(zero, task->train), 0.0) << task->name;
    }
}

TEST(StepWindows, AreApartAnywhereAndCutTheReplay) {
    std::vector<int> covered(150, 0);
    for (uint64_t random = 1; random < 400; random++) {
        const std::vector<StepWindow> windows = pick_windows(150, 4, 4, random);
        ASSERT_EQ(windows.size(), 4u);
        for (int k = 0; k < 4; k++) {
            EXPECT_GE(windows[k].start, 0);
            EXPECT_LE(windows[k].start + windows[k].steps, 150);
            if (k > 0) {
                EXPECT_GE(windows[k].start, windows[k - 1].start + 4);
            }
            for (int s = 0; s < 4; s++) covered[windows[k].start + s]++;
        }
        const std::vector<StepWindow> segments = replay_segments(windows, 150);
        int next = 0;
        for (const StepWindow& s : segments) {
            EXPECT_EQ(s.start, next);
            EXPECT_GT(s.steps, 0);
            next = s.start + s.steps;
        }
        EXPECT_EQ(next, 150);
    }
    // every step, those on the boundaries of any fixed partition of the run included, is in
    // some window
    for (int step = 0; step < 150; step++) EXPECT_GT(covered[step], 0) << step;
    // windows filling the whole run: every step in a window
    const std::vector<StepWindow> full = pick_windows(16, 4, 4, 3);
    for (int k = 0; k < 4; k++) EXPECT_EQ(full[k].start, 4 * k);
    EXPECT_EQ(replay_segments(full, 16).size(), 4u);
    EXPECT_NE(pick_windows(1000, 4, 4, 1)[0].start, pick_windows(1000, 4, 4, 2)[0].start);
    // the replay checks windows one step at a time: every window step is a segment of its own
    const std::vector<StepWindow> steps = single_steps({{10, 3}, {2, 2}});
    ASSERT_EQ(steps.size(), 5u);
    const int starts[] = {2, 3, 10, 11, 12};
    for (int i = 0; i < 5; i++) {
        EXPECT_EQ(steps[i].start, starts[i]);
        EXPECT_EQ(steps[i].steps, 1);
    }
    const std::vector<StepWindow> segments = replay_segments(steps, 20);
    ASSERT_EQ(segments.size(), 8u);  // 0-1, 2, 3, 4-9, 10, 11, 12, 13-19
    EXPECT_EQ(segments[3].start, 4);
    EXPECT_EQ(segments[3].steps, 6);
}

TEST(TrainingState, RoundTripsAndRejectsDamage) {
    const GPTConfig config{16, 8, 4, 1, 2};
    const TrainingState state = initial_state(config, 3);
    const std::string bytes =
        training_state_file(config, 9, state.params.data(), state.m.data(), state.v.data());
    EXPECT_EQ(bytes.size(), training_state_bytes(config));
    auto parsed = parse_training_state(bytes, config, "state.bin");
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(parsed->step, 9);
    EXPECT_EQ(parsed->params, state.params);
    auto expect_refused = [&](const std::string& damaged, const GPTConfig& expected,
                              const std::string& why) {
        auto r = parse_training_state(damaged, expected, "state.bin");
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().find(why), std::string::npos) << r.error();
    };
    expect_refused(bytes.substr(0, 300), config, "needs exactly");
    expect_refused(std::string(100, 'x'), config, "shorter than its 256-byte");
    expect_refused(std::string(300, '\0'), config, "bad magic");
    expect_refused(bytes, GPTConfig{16, 8, 4, 2, 2}, "different shape");
    std::string negative_v = bytes;
    const float minus_one = -1.0f;
    std::memcpy(negative_v.data() + bytes.size() - sizeof(float), &minus_one, sizeof(float));
    expect_refused(negative_v, config, "negative second moment");
    std::string nan_m = bytes;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(nan_m.data() + 256 + num_parameters(config) * sizeof(float), &nan, sizeof(nan));
    expect_refused(nan_m, config, "non-finite");
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
