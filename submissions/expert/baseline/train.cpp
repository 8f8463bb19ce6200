// trainopt-train, expert edition: the reference trainer's training (the same init and batches,
// from contract/; the same math) organised for speed
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
// This file: the contract's command line, inputs, batches and outputs around the step loop; a
// segment (--resume, --until) starts from a saved state and trains only its steps.
#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "contract/batches.h"
#include "contract/trainer_io.h"
#include "lazy_blas.h"
#include "model.h"
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
    const auto args = parse_trainer_args(argc, argv, "trainopt expert trainer");
    if (!args) return args.error();
    const int pool = args->threads > 0 ? args->threads : (int)std::thread::hardware_concurrency();
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, pool);

    const auto loaded = load_trainer_inputs(*args);
    if (!loaded) return fail(loaded.error());
    const TaskSpec& task = loaded->task;
    const GPTConfig& cfg = loaded->config;
    const int B = task.train.batch, T = task.model.context;
    Model model;
    model_create(model, cfg, B, T, pool);
    if (loaded->resumed) {
        load_training_state(model, loaded->start);
    } else {
        init_params_parallel(model.params.data(), cfg, args->seed);
    }
    start_replica_threads(model);

    std::vector<int> inputs(B * T), targets(B * T);
    std::vector<float> losses;
    losses.reserve(loaded->stop_step - loaded->start_step);
    BatchSampler sampler(loaded->train_tokens, args->seed, B, T);
    sampler.skip(loaded->start_step);
    const auto start = std::chrono::steady_clock::now();
    for (int step = loaded->start_step; step < loaded->stop_step; step++) {
        sampler.next(inputs.data(), targets.data());
        losses.push_back(
            train_step(model, task.train, step + 1, inputs.data(), targets.data(), B * T));
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    stop_replica_threads(model);

    // replica 0's kernel times (replicas run in parallel on equal shares; its adamw is the
    // update units its thread took), plus the single-replica update
    KernelProfile profile = model.replicas[0].profile;
    profile.seconds[static_cast<int>(KernelId::adamw)] +=
        model.update_profile.seconds[static_cast<int>(KernelId::adamw)];
    const TrainerRunInfo info{args->nonce, args->seed, task.name, elapsed.count(),
                              kernel_seconds_of(profile)};
    const TrainedState state{model.params.data(), model.m.data(), model.v.data()};
    const Status written = write_trainer_outputs(args->out_dir, *loaded, losses, state, info);
    if (!written) return fail(written.error());
    return 0;
}
