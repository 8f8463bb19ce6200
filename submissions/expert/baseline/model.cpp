#include "model.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "contract/rng.h"
#include "fast_math.h"
#include "lm_head.h"
#include "parallel_range.h"

namespace trainopt {
namespace {

void activations_create(Activations& a, const GPTConfig& cfg, size_t B, size_t T) {
    const size_t BT = B * T, C = cfg.channels, L = cfg.num_layers, V = cfg.vocab_size;
    const size_t NH = cfg.num_heads;
    const bool flash = uses_flash_attention(cfg.channels, cfg.num_heads);
    struct Field {
        ArenaSlice* slice;
        size_t size;
    };
    const Field fields[] = {
        {&a.encoded, BT * C},
        {&a.ln1, L * BT * C},
        {&a.ln1_mean, L * BT},
        {&a.ln1_rstd, L * BT},
        {&a.qkv, L * BT * 3 * C},
        {&a.atty, L * BT * C},
        {&a.att_max, flash ? L * B * NH * T : 0},
        {&a.att_inv, flash ? L * B * NH * T : 0},
        {&a.att, flash ? 0 : L * B * NH * T * T},
        {&a.residual2, L * BT * C},
        {&a.ln2, L * BT * C},
        {&a.ln2_mean, L * BT},
        {&a.ln2_rstd, L * BT},
        {&a.fch, L * BT * 4 * C},
        {&a.fch_gelu, L * BT * 4 * C},
        {&a.residual3, L * BT * C},
        {&a.lnf, BT * C},
        {&a.lnf_mean, BT},
        {&a.lnf_rstd, BT},
        {&a.lnfT, BT * C},
        {&a.chunk_max, (size_t)lm_head_chunks(V) * BT},
        {&a.col_sum, BT},
        {&a.col_factor, BT},
        {&a.logits, BT * V},
        {&a.losses, BT},
        {&a.dres, BT * C},
        {&a.dres2, BT * C},
        {&a.dln, BT * C},
        {&a.dqkv, BT * 3 * C},
        {&a.datty, BT * C},
        {&a.dfch, BT * 4 * C},
    };
    auto padded = [](size_t n) { return (n + 15) / 16 * 16; };  // slices start 64-byte aligned
    size_t total = 0;
    for (const Field& f : fields) total += padded(f.size);
    a.arena.assign(total + 16, 0.0f);
    float* p = a.arena.data() + (16 - (uintptr_t)a.arena.data() / 4 % 16) % 16;
    for (const Field& f : fields) {
        f.slice->ptr = f.size > 0 ? p : nullptr;
        p += padded(f.size);
    }
}

// The widest layers whose products run on fast::gemm_small tiles, not sgemm. Single core, on
// the matmul task's d_model = 192 shapes, AVX-512 tiles reach 166-189 GFLOP/s and OpenBLAS
// 139-166; AVX2 tiles are slower than OpenBLAS above 128 (docs/performance.md).
#ifdef __AVX512F__
constexpr int kTiledWidth = 256;
#else
constexpr int kTiledWidth = 128;
#endif

TiledProducts choose_tiled_products(const GPTConfig& cfg, int T, int replicas) {
    const int C = cfg.channels, V = cfg.vocab_size;
    TiledProducts tiled;
    tiled.layers = replicas > 1 && C % 8 == 0 && C <= kTiledWidth;
    tiled.head = tiled.layers && V % 8 == 0 && (size_t)V * C <= 65536;
    tiled.logits_transposed = tiled.layers && !tiled.head && T % fast::kVecLanes == 0;
    return tiled;
}

// The update units in the order their gradients complete, pieces of about kUpdateChunk floats.
constexpr size_t kUpdateChunk = 16384;

std::vector<UpdateUnit> make_update_units(const Model& model) {
    const GPTConfig& cfg = model.cfg;
    const int L = cfg.num_layers;
    const auto sizes = param_tensor_sizes(cfg);
    std::vector<UpdateUnit> units;
    auto add_range = [&](size_t begin, size_t end, int stage) {
        for (size_t b = begin; b < end; b += kUpdateChunk)
            units.push_back({b, std::min(end, b + kUpdateChunk), stage});
    };
    size_t offsets[kNumParamTensors];
    size_t offset = 0;
    for (int i = 0; i < kNumParamTensors; i++) {
        offsets[i] = offset;
        offset += sizes[i];
    }
    const int lnfw = kNumParamTensors - 2, lnfb = kNumParamTensors - 1;
    add_range(offsets[lnfw], offsets[lnfw] + sizes[lnfw], 0);
    add_range(offsets[lnfb], offsets[lnfb] + sizes[lnfb], 0);
    for (int l = L - 1; l >= 0; l--) {
        for (int i = 2; i < lnfw; i++) {  // ln1w .. fcprojb: L stacked slices each
            const size_t per_layer = sizes[i] / L;
            add_range(offsets[i] + l * per_layer, offsets[i] + (l + 1) * per_layer, L - l);
        }
    }
    add_range(offsets[0], offsets[0] + sizes[0], L + 1);  // wte: the encoder's scatter is last
    add_range(offsets[1], offsets[1] + sizes[1], L + 1);  // wpe
    return units;
}

}  // namespace

void model_create(Model& model, const GPTConfig& cfg, int B, int T, int threads) {
    model.cfg = cfg;
    model.T = T;
    const size_t n = num_parameters(cfg);
    const int count = std::max(1, std::min(threads, B));
    model.replicas = std::vector<Replica>(count);
    model.replica_loss_sums.assign(count, 0.0f);
    int b0 = 0;
    for (int r = 0; r < count; r++) {
        Replica& rep = model.replicas[r];
        rep.b0 = b0;
        rep.B = B / count + (r < B % count ? 1 : 0);
        rep.par = count == 1;
        b0 += rep.B;
    }
    // 10-40 MB of fresh zeroed memory, whose first touch costs ~2.5 us per 4 KB page on this VM
    // (15-20 ms of the matmul task's 0.5 s). Page faults on two threads take half the time, so
    // each replica's thread allocates its own buffers, and params, m and v go round the threads.
    auto allocate = [&](int r) {
        Replica& rep = model.replicas[r];
        rep.grads.assign(n, 0.0f);
        activations_create(rep.a, cfg, rep.B, T);
        for (int k = r; k < 3; k += count) {  // params is a std::vector, m and v HugeBuffers
            if (k == 0) model.params.assign(n, 0.0f);
            if (k == 1) model.m.assign(n, 0.0f);
            if (k == 2) model.v.assign(n, 0.0f);
        }
    };
    std::vector<std::thread> helpers;
    for (int r = 1; r < count; r++) helpers.emplace_back(allocate, r);
    allocate(0);
    for (std::thread& t : helpers) t.join();
    point_parameters(model.p, model.params.data(), cfg);
    for (int r = 0; r < count; r++) {
        Replica& rep = model.replicas[r];
        point_parameters(rep.g, rep.grads.data(), cfg);
        rep.scratch = attention_scratch_create(T, cfg.channels, cfg.num_heads);
    }
    model.tiled = choose_tiled_products(cfg, T, count);
    if (count > 1) {
        model.update_units = make_update_units(model);
        model.progress = std::make_unique<StepProgress>();
        model.progress->stages_done = std::make_unique<StepProgress::Counter[]>(count);
    }
}

// splitmix64 is a counter-based generator (draw k is mix(state + (k + 1) * gamma)), so a chunk
// of parameters can start at its own draw index; fast::init_normals vectorizes the draws with
// the reference's floats as its results.
void init_params_parallel(float* params, const GPTConfig& cfg, uint64_t seed) {
    auto sizes = param_tensor_sizes(cfg);
    const uint64_t gamma = 0x9E3779B97F4A7C15ull, start_state = init_stream_seed(seed);
    uint64_t draws_before = 0;  // u64 draws consumed by earlier tensors (two per normal)
    float* p = params;
    for (int i = 0; i < kNumParamTensors; i++) {
        const ParamInit init = param_init(i, cfg);
        const int n = (int)sizes[i];
        if (init.kind != ParamInit::Kind::normal) {
            std::fill(p, p + n, init.kind == ParamInit::Kind::ones ? 1.0f : 0.0f);
        } else {
            const uint64_t first = draws_before;
            parallel_range(true, n, (double)n * 10, 4096, [&](int j0, int j1) {
                Rng rng(start_state + (first + 2 * (uint64_t)j0) * gamma);
                fast::init_normals(rng, p + j0, j1 - j0, init.scale);
            });
            draws_before += 2 * (uint64_t)n;
        }
        p += n;
    }
}

void load_training_state(Model& model, const TrainingState& state) {
    std::copy(state.params.begin(), state.params.end(), model.params.begin());
    std::copy(state.m.begin(), state.m.end(), model.m.begin());
    std::copy(state.v.begin(), state.v.end(), model.v.begin());
}

}  // namespace trainopt
