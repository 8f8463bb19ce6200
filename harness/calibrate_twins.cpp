#include "harness/calibrate_twins.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "contract/batches.h"
#include "kernels/gpt.h"

namespace trainopt {
namespace {

// ----------------------------------------------------------------------------------------------
// reordered (legitimate): every reduction of the reference in another fp32 order

void matmul_forward_reordered(float* out, const float* inp, const float* weight, const float* bias,
                              int B, int T, int C, int OC) {
    // out(B,T,OC) = inp(B,T,C) @ weight(OC,C)^T + bias(OC): 8 lanes summed pairwise, bias last
    for (int bt = 0; bt < B * T; bt++) {
        const float* x = inp + (size_t)bt * C;
        for (int o = 0; o < OC; o++) {
            const float* w = weight + (size_t)o * C;
            float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int i = 0;
            for (; i + 8 <= C; i += 8)
                for (int l = 0; l < 8; l++) lane[l] += x[i + l] * w[i + l];
            for (; i < C; i++) lane[i % 8] += x[i] * w[i];
            const float sum = ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
                              ((lane[2] + lane[6]) + (lane[3] + lane[7]));
            out[(size_t)bt * OC + o] = sum + (bias != nullptr ? bias[o] : 0.0f);
        }
    }
}

void matmul_backward_reordered(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, int B, int T, int C, int OC) {
    // dinp(B,T,C) += dout(B,T,OC) @ weight(OC,C), output channels in reverse
    for (int bt = 0; bt < B * T; bt++) {
        for (int o = OC - 1; o >= 0; o--) {
            const float d = dout[(size_t)bt * OC + o];
            const float* w = weight + (size_t)o * C;
            float* dx = dinp + (size_t)bt * C;
            for (int i = 0; i < C; i++) dx[i] += w[i] * d;
        }
    }
    // dweight(OC,C) += dout^T @ inp, dbias(OC) += sum of dout: positions in reverse, summed
    // apart and added once
    std::vector<float> acc(C);
    for (int o = 0; o < OC; o++) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        float db = 0.0f;
        for (int bt = B * T - 1; bt >= 0; bt--) {
            const float d = dout[(size_t)bt * OC + o];
            const float* x = inp + (size_t)bt * C;
            db += d;
            for (int i = 0; i < C; i++) acc[i] += x[i] * d;
        }
        if (dbias != nullptr) dbias[o] += db;
        float* dw = dweight + (size_t)o * C;
        for (int i = 0; i < C; i++) dw[i] += acc[i];
    }
}

void layernorm_forward_reordered(float* out, float* mean, float* rstd, const float* inp,
                                 const float* weight, const float* bias, int B, int T, int C) {
    // out(B,T,C); mean and variance summed from the last channel down
    const float eps = 1e-5f;
    for (int bt = 0; bt < B * T; bt++) {
        const float* x = inp + (size_t)bt * C;
        float m = 0.0f;
        for (int i = C - 1; i >= 0; i--) m += x[i];
        m = m / C;
        float v = 0.0f;
        for (int i = C - 1; i >= 0; i--) v += (x[i] - m) * (x[i] - m);
        v = v / C;
        const float s = 1.0f / sqrtf(v + eps);
        float* o = out + (size_t)bt * C;
        for (int i = 0; i < C; i++) o[i] = (s * (x[i] - m)) * weight[i] + bias[i];
        mean[bt] = m;
        rstd[bt] = s;
    }
}

void layernorm_backward_reordered(float* dinp, float* dweight, float* dbias, const float* dout,
                                  const float* inp, const float* weight, const float* mean,
                                  const float* rstd, int B, int T, int C) {
    for (int bt = 0; bt < B * T; bt++) {
        const float* dy = dout + (size_t)bt * C;
        const float* x = inp + (size_t)bt * C;
        float* dx = dinp + (size_t)bt * C;
        // the two reductions from the last channel down
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (int i = C - 1; i >= 0; i--) {
            const float norm = (x[i] - mean[bt]) * rstd[bt];
            const float dnorm = weight[i] * dy[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean = dnorm_mean / C;
        dnorm_norm_mean = dnorm_norm_mean / C;
        for (int i = 0; i < C; i++) {
            const float norm = (x[i] - mean[bt]) * rstd[bt];
            const float dnorm = weight[i] * dy[i];
            dbias[i] += dy[i];
            dweight[i] += norm * dy[i];
            dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * rstd[bt];
        }
    }
}

void attention_forward_reordered(float* out, float* preatt, float* att, const float* inp, int B,
                                 int T, int C, int NH) {
    // inp(B,T,3C) = [q | k | v]; preatt, att (B,NH,T,T); out (B,T,C). q.k over channels in
    // reverse, the exponentials summed from the last key down, values from the last key down
    const int C3 = C * 3, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++) {
                const float* q = inp + b * T * C3 + t * C3 + h * hs;
                float* preatt_bth = preatt + b * NH * T * T + h * T * T + t * T;
                float* att_bth = att + b * NH * T * T + h * T * T + t * T;
                float maxval = -10000.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float* k = inp + b * T * C3 + t2 * C3 + h * hs + C;
                    float val = 0.0f;
                    for (int i = hs - 1; i >= 0; i--) val += q[i] * k[i];
                    val *= scale;
                    maxval = std::max(maxval, val);
                    preatt_bth[t2] = val;
                }
                for (int t2 = 0; t2 <= t; t2++) att_bth[t2] = expf(preatt_bth[t2] - maxval);
                float expsum = 0.0f;
                for (int t2 = t; t2 >= 0; t2--) expsum += att_bth[t2];
                const float inv = expsum == 0.0f ? 0.0f : 1.0f / expsum;
                for (int t2 = 0; t2 < T; t2++) att_bth[t2] = t2 <= t ? att_bth[t2] * inv : 0.0f;
                float* o = out + b * T * C + t * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0.0f;
                for (int t2 = t; t2 >= 0; t2--) {
                    const float* v = inp + b * T * C3 + t2 * C3 + h * hs + C * 2;
                    for (int i = 0; i < hs; i++) o[i] += att_bth[t2] * v[i];
                }
            }
        }
    }
}

void softmax_forward_reordered(float* probs, const float* logits, int B, int T, int V) {
    // probs(B,T,V): the exponentials summed from the last word down
    for (int bt = 0; bt < B * T; bt++) {
        const float* l = logits + (size_t)bt * V;
        float* p = probs + (size_t)bt * V;
        float maxval = -10000.0f;
        for (int i = 0; i < V; i++) maxval = std::max(maxval, l[i]);
        for (int i = 0; i < V; i++) p[i] = expf(l[i] - maxval);
        float sum = 0.0f;
        for (int i = V - 1; i >= 0; i--) sum += p[i];
        for (int i = 0; i < V; i++) p[i] /= sum;
    }
}

// ----------------------------------------------------------------------------------------------
// bf16-matmul (cheating): every matmul operand rounded to bfloat16, accumulated in fp32

float to_bf16(float x) {
    // round to nearest even of the upper 16 bits
    uint32_t u;
    std::memcpy(&u, &x, 4);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    std::memcpy(&x, &u, 4);
    return x;
}

void matmul_forward_bf16(float* out, const float* inp, const float* weight, const float* bias,
                         int B, int T, int C, int OC) {
    // out(B,T,OC) = bf16(inp(B,T,C)) @ bf16(weight(OC,C))^T + bias(OC)
    for (int bt = 0; bt < B * T; bt++) {
        for (int o = 0; o < OC; o++) {
            float val = bias != nullptr ? bias[o] : 0.0f;
            for (int i = 0; i < C; i++)
                val += to_bf16(inp[(size_t)bt * C + i]) * to_bf16(weight[(size_t)o * C + i]);
            out[(size_t)bt * OC + o] = val;
        }
    }
}

void matmul_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const float* weight, int B, int T, int C, int OC) {
    // dinp(B,T,C) += bf16(dout) @ bf16(weight); dweight(OC,C) += bf16(dout)^T @ bf16(inp)
    for (int bt = 0; bt < B * T; bt++) {
        for (int o = 0; o < OC; o++) {
            const float d = to_bf16(dout[(size_t)bt * OC + o]);
            for (int i = 0; i < C; i++)
                dinp[(size_t)bt * C + i] += to_bf16(weight[(size_t)o * C + i]) * d;
        }
    }
    for (int o = 0; o < OC; o++) {
        for (int bt = 0; bt < B * T; bt++) {
            const float d = dout[(size_t)bt * OC + o];
            if (dbias != nullptr) dbias[o] += d;
            const float d16 = to_bf16(d);
            for (int i = 0; i < C; i++)
                dweight[(size_t)o * C + i] += to_bf16(inp[(size_t)bt * C + i]) * d16;
        }
    }
}

// ----------------------------------------------------------------------------------------------
// coarse-exp (cheating): the vocabulary softmax with tests/cheats/approx_exp_vocab.patch's cubic
// exp (Chebyshev interpolation after range reduction, relative error 1.0e-4, about 1300 ulp;
// docs/tolerances.md, "Approximated math")

float cubic_exp(float x) {
    if (x < -87.0f) return 0.0f;
    const float n = std::nearbyint(x * 1.44269504f);
    const float r = x - n * 0.693147182f;
    return std::ldexp(0.999924481f + r * (0.99998492f + r * (0.505025208f + r * 0.167670697f)),
                      (int)n);
}

void softmax_forward_coarse(float* probs, const float* logits, int B, int T, int V) {
    // probs(B,T,V), as the reference with cubic_exp for expf
    for (int bt = 0; bt < B * T; bt++) {
        const float* l = logits + (size_t)bt * V;
        float* p = probs + (size_t)bt * V;
        float maxval = -10000.0f;
        for (int i = 0; i < V; i++) maxval = std::max(maxval, l[i]);
        float sum = 0.0f;
        for (int i = 0; i < V; i++) {
            p[i] = cubic_exp(l[i] - maxval);
            sum += p[i];
        }
        for (int i = 0; i < V; i++) p[i] /= sum;
    }
}

// ----------------------------------------------------------------------------------------------
// the training loop (baseline/train.cpp's) with the twin's policy

// [offset, offset + count) of each per-layer tensor slice of `layer` in the canonical layout.
std::vector<std::pair<size_t, size_t>> layer_slices(const GPTConfig& config, int layer) {
    const auto sizes = param_tensor_sizes(config);
    std::vector<std::pair<size_t, size_t>> slices;
    size_t offset = 0;
    for (int t = 0; t < kNumParamTensors; t++) {
        // ln1w .. fcprojb (tensors 2 to 13) hold L layers each
        if (t >= 2 && t <= 13) {
            const size_t per_layer = sizes[t] / config.num_layers;
            slices.push_back({offset + per_layer * layer, per_layer});
        }
        offset += sizes[t];
    }
    return slices;
}

TrainingState state_of(const GPT& model, int step) {
    return TrainingState{step, model.params_memory, model.m_memory, model.v_memory};
}

}  // namespace

KernelTable reordered_kernels() {
    KernelTable k = reference_kernels();
    k.matmul_forward = matmul_forward_reordered;
    k.matmul_backward = matmul_backward_reordered;
    k.layernorm_forward = layernorm_forward_reordered;
    k.layernorm_backward = layernorm_backward_reordered;
    k.attention_forward = attention_forward_reordered;
    k.softmax_forward = softmax_forward_reordered;
    return k;
}

Twin reference_twin() {
    return Twin{"reference", "the reference kernels", TwinKind::legitimate, reference_kernels(), 0,
                -1};
}

std::vector<Twin> calibration_twins() {
    std::vector<Twin> twins;
    twins.push_back({"reordered",
                     "legitimate: every fp32 reduction in another order (matmul lanes, "
                     "layernorm, attention, softmax sums)",
                     TwinKind::legitimate, reordered_kernels(), 0, -1});
    KernelTable bf16 = reference_kernels();
    bf16.matmul_forward = matmul_forward_bf16;
    bf16.matmul_backward = matmul_backward_bf16;
    twins.push_back({"bf16-matmul", "cheat: matmul operands rounded to bfloat16",
                     TwinKind::cheating, bf16, 0, -1});
    twins.push_back({"skip-5%", "cheat: 5% of the steps (at least one) make no update",
                     TwinKind::cheating, reference_kernels(), 0.05, -1});
    twins.push_back({"frozen-layer", "cheat: the first transformer layer is never updated",
                     TwinKind::cheating, reference_kernels(), 0, 0});
    KernelTable coarse = reference_kernels();
    coarse.softmax_forward = softmax_forward_coarse;
    twins.push_back({"coarse-exp", "cheat: cubic exp (1e-4) in the vocabulary softmax",
                     TwinKind::cheating, coarse, 0, -1, true});
    return twins;
}

std::vector<int> skipped_steps(int steps, double fraction) {
    std::vector<int> skipped;
    if (!(fraction > 0) || steps < 1) return skipped;
    const int count = std::clamp((int)std::lround(fraction * steps), 1, steps);
    for (int j = 0; j < count; j++)
        skipped.push_back((int)(((int64_t)2 * j + 1) * steps / (2 * count)));
    return skipped;
}

TwinRun run_twin(const TaskSpec& task, const std::vector<int>& train_tokens, uint64_t seed,
                 const Twin& twin, const std::vector<StepWindow>& windows, bool (*stop)()) {
    const GPTConfig config = gpt_config_of(task);
    const int B = task.train.batch, T = task.model.context;
    const TrainSpec& train = task.train;
    GPT model;
    gpt_create(model, config, B, T, twin.kernels);
    init_params(model.params_memory.data(), config, seed);

    const std::vector<int> skipped = skipped_steps(train.steps, twin.skip_fraction);
    std::vector<std::pair<size_t, size_t>> frozen;
    if (twin.frozen_layer >= 0 && twin.frozen_layer < config.num_layers)
        frozen = layer_slices(config, twin.frozen_layer);

    TwinRun run;
    run.window_starts.resize(windows.size());
    run.window_ends.resize(windows.size());
    std::vector<int> inputs(B * T), targets(B * T);
    BatchSampler sampler(train_tokens, seed, B, T);
    for (int step = 0; step < train.steps; step++) {
        if (stop != nullptr && stop()) break;
        for (size_t w = 0; w < windows.size(); w++)
            if (windows[w].start == step) run.window_starts[w] = state_of(model, step);

        sampler.next(inputs.data(), targets.data());
        gpt_forward(model, inputs.data(), targets.data());
        if (!std::binary_search(skipped.begin(), skipped.end(), step)) {
            gpt_zero_grad(model);
            gpt_backward(model, inputs.data(), targets.data());
            // the frozen layer's parameters and moments are put back after the update
            std::vector<float> saved;
            for (const auto& [offset, count] : frozen)
                for (const std::vector<float>* x :
                     {&model.params_memory, &model.m_memory, &model.v_memory})
                    saved.insert(saved.end(), x->begin() + offset, x->begin() + offset + count);
            gpt_update(model, train.lr, train.beta1, train.beta2, train.eps, train.weight_decay,
                       step + 1);
            size_t at = 0;
            for (const auto& [offset, count] : frozen)
                for (std::vector<float>* x :
                     {&model.params_memory, &model.m_memory, &model.v_memory}) {
                    std::copy(saved.begin() + at, saved.begin() + at + count, x->begin() + offset);
                    at += count;
                }
        }
        run.losses.push_back(model.mean_loss);

        for (size_t w = 0; w < windows.size(); w++)
            if (windows[w].start + windows[w].steps == step + 1)
                run.window_ends[w] = state_of(model, step + 1);
    }
    run.params = std::move(model.params_memory);
    return run;
}

}  // namespace trainopt
