// The model's memory, all allocated up front by model_create: parameters and AdamW moments, and
// the batch split into replicas (one per thread), each with its own gradients, activations and
// attention scratch. A training step allocates nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "attention.h"
#include "contract/training_state.h"
#include "huge_buffer.h"
#include "kernels/gpt.h"
#include "spin_pool.h"

namespace trainopt {

// A piece of an arena (Activations::arena).
struct ArenaSlice {
    float* ptr = nullptr;
    float* data() const { return ptr; }
    float& operator[](size_t i) const { return ptr[i]; }
};

// One replica's activations, B its rows of the batch, L layers. They are all slices of one
// arena, so that they sit on huge pages: most are smaller than a huge page (huge_buffer.h), and
// the 4 KB page faults of their first touch cost 15-20% of a one-step long-context run. Slices
// a model does not use are null.
struct Activations {
    fast::HugeBuffer arena;
    ArenaSlice encoded;                  // (B,T,C) token plus position embeddings
    ArenaSlice ln1, ln1_mean, ln1_rstd;  // (L,B,T,C), (L,B,T), (L,B,T)
    ArenaSlice qkv;                      // (L,B,T,3C)
    ArenaSlice atty;                     // (L,B,T,C) attention output, before its projection
    ArenaSlice att;                      // (L,B,NH,T,T) probabilities: sgemm attention only
    ArenaSlice att_max, att_inv;         // (L,B,NH,T) per query max, 1/sum: flash attention only
    ArenaSlice residual2;                // (L,B,T,C)
    ArenaSlice ln2, ln2_mean, ln2_rstd;  // (L,B,T,C), (L,B,T), (L,B,T)
    ArenaSlice fch;                      // (L,B,T,4C) fc output, then GELU's derivative over it
    ArenaSlice fch_gelu;                 // (L,B,T,4C)
    ArenaSlice residual3;                // (L,B,T,C)
    ArenaSlice lnf, lnf_mean, lnf_rstd;  // (B,T,C), (B,T), (B,T)
    ArenaSlice lnfT;                     // (C,B*T) lnf transposed, for the transposed LM head
    ArenaSlice chunk_max;                // (vocabulary chunks,B*T) transposed LM head
    ArenaSlice col_sum, col_factor;      // (B*T) transposed LM head
    ArenaSlice logits;                   // (B,T,V), or (V,B*T) transposed; dlogits in place later
    ArenaSlice losses;                   // (B,T)
    // the backward's gradients of one layer's activations at a time
    ArenaSlice dres, dres2, dln;  // (B,T,C)
    ArenaSlice dqkv;              // (B,T,3C)
    ArenaSlice datty;             // (B,T,C)
    ArenaSlice dfch;              // (B,T,4C)
};

// One slice of the batch (rows b0 .. b0+B-1) with its own activations and gradients.
struct Replica {
    int b0 = 0, B = 0;
    bool par = false;  // may its kernels use oneTBB's threads (only when it is the only replica)
    fast::HugeBuffer grads;
    ParameterTensors g{};
    Activations a;
    AttentionScratch scratch;
    KernelProfile profile;
};

// Which products run on fast::gemm_small tiles, not sgemm: the layers', when every replica runs
// single-threaded and the layers are narrow (there sgemm's per-call set-up and packing cost more
// than the products); the LM head's too when it is small, and with a wide vocabulary the LM
// head with logits stored (V,BT).
struct TiledProducts {
    bool layers = false, head = false;
    bool logits_transposed = false;
};

// The update in pieces that a thread can take as soon as every replica's backward has produced
// their gradients: a layer's parameters are final once all replicas are past that layer, so the
// thread whose replica finishes first updates the top layers while the other still works on the
// lower ones (waiting for the slower replica would cost 5-10% of a step). AdamW is elementwise,
// so which thread updates which piece does not change a bit of the result.
struct UpdateUnit {
    size_t begin = 0, end = 0;  // parameter range
    int stage = 0;              // backward stage that completes its gradients (see StepProgress)
};

// Per step: how many backward stages each replica has completed (stage 0: LM head and final
// layernorm; 1 + (L-1-l): layer l; L+1: the embeddings), and the next update unit to take.
struct StepProgress {
    struct alignas(64) Counter {
        std::atomic<int> value{0};
    };
    std::unique_ptr<Counter[]> stages_done;
    alignas(64) std::atomic<int> next_unit{0};
};

struct Model {
    GPTConfig cfg;
    int T = 0;
    std::vector<float> params;  // canonical layout; std::vector for write_trainer_outputs
    fast::HugeBuffer m, v;      // AdamW moments
    ParameterTensors p{};
    TiledProducts tiled;
    // With several replicas: one spinning thread per replica, which runs its replica's forward
    // and backward and then takes update units (below) until none is left (train_step.h).
    std::unique_ptr<fast::SpinPool> pool;
    std::vector<UpdateUnit> update_units;
    std::unique_ptr<StepProgress> progress;
    std::vector<Replica> replicas;
    std::vector<float> replica_loss_sums;
    KernelProfile update_profile;  // the update's time when there is a single replica
};

// Allocates everything for batches of B rows of T positions, split into min(threads, B)
// replicas of near-equal size; params, m and v start at zero.
void model_create(Model& model, const GPTConfig& cfg, int B, int T, int threads);

// Copies a saved state's parameters and AdamW moments into the model (a resumed segment).
void load_training_state(Model& model, const TrainingState& state);

// gpt_init_params(params, cfg, seed), bit for bit, in parallel on oneTBB's threads.
void init_params_parallel(float* params, const GPTConfig& cfg, uint64_t seed);

}  // namespace trainopt
