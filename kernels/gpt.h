// The GPT model: activations, and the forward, backward and update passes written against the
// KernelTable. The configuration, the canonical parameter layout and the initialisation are the
// trainer contract's (contract/model_layout.h). All memory is allocated once in gpt_create; a
// training step allocates nothing.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "contract/model_layout.h"
#include "kernels/kernels.h"

namespace trainopt {

constexpr int kNumActTensors = 23;

struct ParameterTensors {
    float* wte;
    float* wpe;
    float* ln1w;
    float* ln1b;
    float* qkvw;
    float* qkvb;
    float* attprojw;
    float* attprojb;
    float* ln2w;
    float* ln2b;
    float* fcw;
    float* fcb;
    float* fcprojw;
    float* fcprojb;
    float* lnfw;
    float* lnfb;
};

// Points each tensor of `tensors` into `memory`, which holds num_parameters(config) floats in
// the canonical layout.
void point_parameters(ParameterTensors& tensors, float* memory, const GPTConfig& config);

struct ActivationTensors {
    float* encoded;    // (B,T,C)
    float* ln1;        // (L,B,T,C)
    float* ln1_mean;   // (L,B,T)
    float* ln1_rstd;   // (L,B,T)
    float* qkv;        // (L,B,T,3C)
    float* atty;       // (L,B,T,C)
    float* preatt;     // (L,B,NH,T,T)
    float* att;        // (L,B,NH,T,T)
    float* attproj;    // (L,B,T,C)
    float* residual2;  // (L,B,T,C)
    float* ln2;        // (L,B,T,C)
    float* ln2_mean;   // (L,B,T)
    float* ln2_rstd;   // (L,B,T)
    float* fch;        // (L,B,T,4C)
    float* fch_gelu;   // (L,B,T,4C)
    float* fcproj;     // (L,B,T,C)
    float* residual3;  // (L,B,T,C)
    float* lnf;        // (B,T,C)
    float* lnf_mean;   // (B,T)
    float* lnf_rstd;   // (B,T)
    float* logits;     // (B,T,V)
    float* probs;      // (B,T,V)
    float* losses;     // (B,T)
};

// Per-kernel wall time of the trainer, self-reported and therefore advisory only.
enum class KernelId {
    encoder,
    layernorm,
    matmul,
    attention,
    gelu,
    residual,
    softmax_xent,
    adamw,
    count
};
extern const char* const kKernelNames[static_cast<int>(KernelId::count)];

struct KernelProfile {
    std::array<double, static_cast<int>(KernelId::count)> seconds{};
};

// The profile as meta.json's kernel_seconds (contract/trainer_io.h).
std::vector<std::pair<std::string, double>> kernel_seconds_of(const KernelProfile& profile);

// Adds the wall time of one kernel call to the profile when it goes out of scope.
class KernelTimer {
  public:
    KernelTimer(KernelProfile& profile, KernelId id)
        : profile_(profile), id_(id), start_(std::chrono::steady_clock::now()) {}
    ~KernelTimer() {
        std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
        profile_.seconds[static_cast<int>(id_)] += elapsed.count();
    }

  private:
    KernelProfile& profile_;
    KernelId id_;
    std::chrono::steady_clock::time_point start_;
};

struct GPT {
    GPTConfig config;
    int batch_size = 0;  // B the activations were sized for
    int seq_len = 0;     // T the activations were sized for
    KernelTable kernels{};

    std::vector<float> params_memory;  // canonical layout
    std::vector<float> grads_memory;
    std::vector<float> m_memory;  // AdamW first moment
    std::vector<float> v_memory;  // AdamW second moment
    std::vector<float> acts_memory;
    std::vector<float> grads_acts_memory;
    ParameterTensors params{};
    ParameterTensors grads{};
    ActivationTensors acts{};
    ActivationTensors grads_acts{};
    float mean_loss = 0.0f;
    KernelProfile profile;
};

// Allocate everything for training with batch B and sequence length T (T <= max_seq_len).
void gpt_create(GPT& model, const GPTConfig& config, int B, int T, const KernelTable& kernels);

// inputs, targets: (B,T) token ids. Sets model.mean_loss.
void gpt_forward(GPT& model, const int* inputs, const int* targets);
void gpt_zero_grad(GPT& model);
void gpt_backward(GPT& model, const int* inputs, const int* targets);
void gpt_update(GPT& model, float lr, float beta1, float beta2, float eps, float weight_decay,
                int t);

}  // namespace trainopt
