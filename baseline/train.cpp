// trainopt-train: the deliberately naive reference trainer (the "unmodified code").
//
//   trainopt-train --task T.toml --data DIR --seed N --out DIR --nonce X [--threads K]
//                  [--resume STATE] [--until STEP]
//
// Reads DIR/train.bin, trains the task's GPT for train.steps AdamW steps on the seed's batches,
// and writes OUT/losses.csv, OUT/final.ckpt and OUT/meta.json (the trainer contract,
// contract/trainer_io.h). A segment (--resume, --until) starts from a saved state and trains
// only its steps. Everything is allocated before the first step; the step itself is
// forward, zero_grad, backward, update, in that order. The baseline uses one thread.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "contract/batches.h"
#include "contract/trainer_io.h"
#include "kernels/gpt.h"
#include "kernels/registry.h"

using namespace trainopt;

namespace {

int fail(const std::string& message) {
    fprintf(stderr, "trainopt-train: error: %s\n", message.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    const auto args = parse_trainer_args(argc, argv, "trainopt reference trainer");
    if (!args) return args.error();
    const auto loaded = load_trainer_inputs(*args);
    if (!loaded) return fail(loaded.error());
    const TaskSpec& task = loaded->task;
    const GPTConfig& config = loaded->config;
    const std::string& out_dir = args->out_dir;
    const std::string& nonce = args->nonce;
    const int B = task.train.batch, T = task.model.context;

    GPT model;
    gpt_create(model, config, B, T, trainer_kernels());
    if (loaded->resumed) {
        model.params_memory = loaded->start.params;
        model.m_memory = loaded->start.m;
        model.v_memory = loaded->start.v;
    } else {
        init_params(model.params_memory.data(), config, args->seed);
    }

    std::vector<int> inputs(B * T), targets(B * T);
    std::vector<float> losses;
    losses.reserve(loaded->stop_step - loaded->start_step);
    BatchSampler sampler(loaded->train_tokens, args->seed, B, T);
    sampler.skip(loaded->start_step);

    const auto start = std::chrono::steady_clock::now();
    for (int step = loaded->start_step; step < loaded->stop_step; step++) {
        sampler.next(inputs.data(), targets.data());
        gpt_forward(model, inputs.data(), targets.data());
        gpt_zero_grad(model);
        gpt_backward(model, inputs.data(), targets.data());
        gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                   task.train.weight_decay, step + 1);
        losses.push_back(model.mean_loss);
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

    const TrainerRunInfo info{nonce, args->seed, task.name, elapsed.count(),
                              kernel_seconds_of(model.profile)};
    const TrainedState state{model.params_memory.data(), model.m_memory.data(),
                             model.v_memory.data()};
    const Status written = write_trainer_outputs(out_dir, *loaded, losses, state, info);
    if (!written) return fail(written.error());
    return 0;
}
