// The model a task trains and its canonical parameter layout: what every trainer's checkpoint
// holds and how every trainer initialises it. Trusted: the verifier recomputes the initial weights
// from this file, so a trainer that initialises differently trains a different model.
//
// Canonical parameter layout (also the checkpoint payload order), L = layers, C = channels,
// V = vocab, T = context:
//   wte(V,C) wpe(T,C) ln1w(L,C) ln1b(L,C) qkvw(L,3C,C) qkvb(L,3C) attprojw(L,C,C) attprojb(L,C)
//   ln2w(L,C) ln2b(L,C) fcw(L,4C,C) fcb(L,4C) fcprojw(L,C,4C) fcprojb(L,C) lnfw(C) lnfb(C)
// The LM head is tied to wte.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "tasks/task_spec.h"

namespace trainopt {

struct GPTConfig {
    int vocab_size = 0;   // V
    int max_seq_len = 0;  // T (context)
    int channels = 0;     // C (d_model)
    int num_layers = 0;   // L
    int num_heads = 0;    // NH
};

// The model a task trains.
GPTConfig gpt_config_of(const TaskSpec& task);

constexpr int kNumParamTensors = 16;
extern const char* const kParamTensorNames[kNumParamTensors];

// Sizes (in floats) of the 16 parameter tensors, in canonical order.
std::array<size_t, kNumParamTensors> param_tensor_sizes(const GPTConfig& config);
size_t num_parameters(const GPTConfig& config);

// How a parameter tensor starts (GPT-2 style): layernorm weights 1, biases 0, the other weights
// N(0, 0.02), the residual projections (attprojw, fcprojw) scaled by 1/sqrt(2L).
struct ParamInit {
    enum class Kind { zeros, ones, normal };
    Kind kind = Kind::normal;
    float scale = 1.0f;  // normal only: each draw is scale * (float)(0.02 * normal)
};
ParamInit param_init(int tensor, const GPTConfig& config);

// The initial weights of a run: the tensors in canonical order, each normal tensor consuming the
// next draws of the seed's init stream (init_stream_seed, two 64-bit draws per value; zeros and
// ones consume none). A parallel trainer can start a chunk at its own draw: Rng is counter-based.
void init_params(float* params, const GPTConfig& config, uint64_t seed);

}  // namespace trainopt
