// trainopt-train, expert edition: the reference trainer's training (the same init,
// gpt_init_params; the same batches, the seed's data stream; the same math) organised for speed
// on the CPU. Only the order of floating-point operations differs. Measurements are in
// docs/performance.md. By file:
// - model: all memory allocated up front, the batch split into one replica per thread, each
//   running the whole forward and backward on its rows single-threaded (forward_backward); a
//   single replica splits its kernels across oneTBB's threads (parallel_range.h);
// - train_step: a step is one job on a spinning fork-join pool (spin_pool.h); a thread whose
//   replica is done updates the layers every replica is past, summing the replicas' gradients
//   in a fixed order inside the AdamW pass (adamw);
// - matmul: narrow layers on register-blocked tiles (small_gemm.h, AVX-512 where the build
//   machine has it, else AVX2), wider ones on OpenBLAS (lazy_blas.h); bias and residual adds
//   folded into the products' C operand;
// - attention: flash-style for heads of a multiple of 8 channels, the (T,T) matrix never
//   stored; heads of 8 channels (16 too, on AVX-512) with one query per vector lane
//   (attention_query_lanes.h);
// - lm_head: the tied LM head, softmax, cross-entropy and its backward in one pass per row,
//   dlogits in place; a wide vocabulary in chunks with an online softmax;
// - layernorm, encoder: the rest of the layer stack;
// - fast_math: exp and GELU as polynomials within 2 ulp of libm (GELU's forward also stores its
//   derivative), vectorized initialisation;
// - huge_buffer.h: large buffers on transparent huge pages.
// Backward kernels overwrite their outputs, parameter gradients too, so nothing is cleared each
// step but the position-embedding gradient.
//
// This file: the command line, the task and its tokens, the batches, the outputs.
#include <tbb/global_control.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kernels/gpt.h"
#include "kernels/rng.h"
#include "kernels/trainer_outputs.h"
#include "lazy_blas.h"
#include "model.h"
#include "tasks/data.h"
#include "tasks/task_spec.h"
#include "train_step.h"

using namespace trainopt;

namespace {

int fail(const std::string& message) {
    fprintf(stderr, "trainopt-train: error: %s\n", message.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    blas::configure();  // before any thread exists
    CLI::App app{"trainopt expert trainer"};
    std::string task_path, data_dir, out_dir, nonce;
    uint64_t seed = 0;
    int threads = 0;
    app.add_option("--task", task_path)->required();
    app.add_option("--data", data_dir)->required();
    app.add_option("--seed", seed)->required();
    app.add_option("--out", out_dir)->required();
    app.add_option("--nonce", nonce)->required();
    app.add_option("--threads", threads);
    CLI11_PARSE(app, argc, argv);

    const int pool = threads > 0 ? threads : (int)std::thread::hardware_concurrency();
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, pool);

    TaskSpec task;
    std::string error;
    if (!load_task(task_path, task, error)) return fail(error);
    std::vector<int> tokens;
    if (!read_tokens(data_dir + "/train.bin", task.model.vocab_size, tokens, error))
        return fail(error);
    if (tokens.size() < (size_t)task.model.context + 2) return fail("train.bin is too short");
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);

    const GPTConfig cfg{task.model.vocab_size, task.model.context, task.model.d_model,
                        task.model.layers, task.model.heads};
    const int B = task.train.batch, T = task.model.context;
    Model model;
    model_create(model, cfg, B, T, pool);
    init_params_parallel(model.params.data(), cfg, seed);
    start_replica_threads(model);

    std::vector<int> inputs(B * T), targets(B * T);
    std::vector<float> losses(task.train.steps);
    Rng rng(data_stream_seed(seed));
    const uint64_t range = tokens.size() - T - 1;
    const auto start = std::chrono::steady_clock::now();
    for (int step = 0; step < task.train.steps; step++) {
        for (int b = 0; b < B; b++) {
            const size_t s = rng.next_below(range);
            std::copy(tokens.begin() + s, tokens.begin() + s + T, inputs.begin() + b * T);
            std::copy(tokens.begin() + s + 1, tokens.begin() + s + T + 1, targets.begin() + b * T);
        }
        losses[step] =
            train_step(model, task.train, step + 1, inputs.data(), targets.data(), B * T);
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    stop_replica_threads(model);

    // replica 0's kernel times (replicas run in parallel on equal shares; its adamw is the
    // update units its thread took), plus the single-replica update
    TrainerRunInfo info{nonce, seed, task.name, elapsed.count(), model.replicas[0].profile};
    info.profile.seconds[static_cast<int>(KernelId::adamw)] +=
        model.update_profile.seconds[static_cast<int>(KernelId::adamw)];
    error = write_trainer_outputs(out_dir, losses, cfg, model.params, info);
    if (!error.empty()) return fail(error);
    return 0;
}
