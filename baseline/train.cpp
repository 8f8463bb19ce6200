// trainopt-train: the deliberately naive reference trainer (the "unmodified code").
//
//   trainopt-train --task T.toml --data DIR --seed N --out DIR --nonce X [--threads K]
//
// Reads DIR/train.bin, trains the task's GPT for train.steps AdamW steps on batches sampled
// from the seed, and writes OUT/losses.csv, OUT/final.ckpt and OUT/meta.json.
// Everything is allocated before the first step; the step itself is forward, zero_grad,
// backward, update, in that order.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "kernels/gpt.h"
#include "kernels/registry.h"
#include "kernels/rng.h"
#include "kernels/trainer_outputs.h"
#include "tasks/data.h"
#include "tasks/task_spec.h"

using namespace trainopt;

namespace {

// Samples B windows of T+1 tokens at offsets drawn from the data stream of the seed.
struct BatchSampler {
    const std::vector<int>& tokens;
    Rng rng;
    int B, T;

    void next(std::vector<int>& inputs, std::vector<int>& targets) {
        const uint64_t range = tokens.size() - T - 1;
        for (int b = 0; b < B; b++) {
            const size_t start = rng.next_below(range);
            for (int t = 0; t < T; t++) {
                inputs[b * T + t] = tokens[start + t];
                targets[b * T + t] = tokens[start + t + 1];
            }
        }
    }
};

int fail(const std::string& message) {
    fprintf(stderr, "trainopt-train: error: %s\n", message.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"trainopt reference trainer"};
    std::string task_path, data_dir, out_dir, nonce;
    uint64_t seed = 0;
    int threads = 1;
    app.add_option("--task", task_path, "task spec (TOML)")->required();
    app.add_option("--data", data_dir, "directory holding train.bin")->required();
    app.add_option("--seed", seed, "training seed (init and batch order)")->required();
    app.add_option("--out", out_dir, "output directory")->required();
    app.add_option("--nonce", nonce, "string echoed into meta.json")->required();
    app.add_option("--threads", threads, "threads allowed (the baseline uses one)");
    CLI11_PARSE(app, argc, argv);

    TaskSpec task;
    std::string error;
    if (!load_task(task_path, task, error)) return fail(error);
    std::vector<int> train_tokens;
    if (!read_tokens(data_dir + "/train.bin", task.model.vocab_size, train_tokens, error))
        return fail(error);
    if (train_tokens.size() < (size_t)task.model.context + 2)
        return fail("train.bin is shorter than one context window");
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) return fail("cannot create " + out_dir + ": " + ec.message());

    const GPTConfig config{task.model.vocab_size, task.model.context, task.model.d_model,
                           task.model.layers, task.model.heads};
    const int B = task.train.batch, T = task.model.context;
    GPT model;
    gpt_create(model, config, B, T, trainer_kernels());
    gpt_init_params(model.params_memory.data(), config, seed);

    std::vector<int> inputs(B * T), targets(B * T);
    std::vector<float> losses(task.train.steps);
    BatchSampler sampler{train_tokens, Rng(data_stream_seed(seed)), B, T};

    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < task.train.steps; step++) {
        sampler.next(inputs, targets);
        gpt_forward(model, inputs.data(), targets.data());
        gpt_zero_grad(model);
        gpt_backward(model, inputs.data(), targets.data());
        gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                   task.train.weight_decay, step + 1);
        losses[step] = model.mean_loss;
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

    TrainerRunInfo info{nonce, seed, task.name, elapsed.count(), model.profile};
    error = write_trainer_outputs(out_dir, losses, config, model.params_memory, info);
    if (!error.empty()) return fail(error);
    return 0;
}
