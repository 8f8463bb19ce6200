#include "harness/step_check.h"

#include <algorithm>
#include <cmath>

#include "contract/batches.h"
#include "contract/rng.h"
#include "kernels/gpt.h"

namespace trainopt {

double l2_distance(const std::vector<float>& a, const std::vector<float>& b) {
    double sum = 0;
    for (size_t i = 0; i < a.size(); i++) {
        const double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return std::sqrt(sum);
}

double relative_distance(const std::vector<float>& sub, const std::vector<float>& ref,
                         const std::vector<float>& start) {
    const double moved = l2_distance(ref, start);
    const double distance = l2_distance(sub, ref);
    return moved > 0 ? distance / moved : distance;
}

std::string ParamSlice::name() const {
    return std::string(kParamTensorNames[tensor]) +
           (layer >= 0 ? " of layer " + std::to_string(layer) : "");
}

std::vector<ParamSlice> param_slices(const GPTConfig& config) {
    const auto sizes = param_tensor_sizes(config);
    std::vector<ParamSlice> slices;
    size_t offset = 0;
    for (int t = 0; t < kNumParamTensors; t++) {
        const bool per_layer = t >= 2 && t < kNumParamTensors - 2;
        const int count = per_layer ? config.num_layers : 1;
        const size_t n = sizes[t] / count;
        for (int layer = 0; layer < count; layer++, offset += n)
            slices.push_back({t, per_layer ? layer : -1, offset, n});
    }
    return slices;
}

std::vector<TensorDistance> tensor_distances(const std::vector<float>& sub,
                                             const std::vector<float>& ref,
                                             const std::vector<float>& start,
                                             const GPTConfig& config) {
    std::vector<TensorDistance> out;
    for (const ParamSlice& s : param_slices(config)) {
        double moved = 0, distance = 0;
        for (size_t i = s.offset; i < s.offset + s.size; i++) {
            const double m = (double)ref[i] - (double)start[i];
            const double d = (double)sub[i] - (double)ref[i];
            moved += m * m;
            distance += d * d;
        }
        moved = std::sqrt(moved);
        distance = std::sqrt(distance);
        const double rel = moved > 0 ? distance / moved : (distance > 0 ? INFINITY : 0.0);
        out.push_back({s, rel, moved});
    }
    return out;
}

const char* gradient_kernel_of(int tensor) {
    // indices as in kParamTensorNames: the backward calls of gpt_backward (kernels/gpt.cpp) that
    // accumulate into each gradient; a wrong kernel further down the backward pass (a later
    // layer, attention_backward, gelu_backward, softmax) shows in this tensor too
    static const char* const kKernels[kNumParamTensors] = {
        "encoder_backward (token embedding) and matmul_backward of the LM head (tied to wte)",
        "encoder_backward (position embedding)",
        "layernorm_backward of ln1 (before attention)",
        "layernorm_backward of ln1 (before attention)",
        "matmul_backward of the attention's qkv projection (its dout from attention_backward)",
        "matmul_backward of the attention's qkv projection (its dout from attention_backward)",
        "matmul_backward of the attention's output projection",
        "matmul_backward of the attention's output projection",
        "layernorm_backward of ln2 (before the MLP)",
        "layernorm_backward of ln2 (before the MLP)",
        "matmul_backward of the MLP's fc layer (its dout from gelu_backward)",
        "matmul_backward of the MLP's fc layer (its dout from gelu_backward)",
        "matmul_backward of the MLP's projection",
        "matmul_backward of the MLP's projection",
        "layernorm_backward of the final layernorm",
        "layernorm_backward of the final layernorm"};
    return tensor >= 0 && tensor < kNumParamTensors ? kKernels[tensor] : "";
}

std::vector<StepWindow> pick_windows(int total, int count, int steps, uint64_t random) {
    Rng rng(random);
    // uniformly placed, not overlapping: drawn again while two overlap
    for (int attempt = 0; attempt < 1000; attempt++) {
        std::vector<StepWindow> windows;
        for (int k = 0; k < count; k++)
            windows.push_back({(int)rng.next_below((uint64_t)(total - steps + 1)), steps});
        std::sort(windows.begin(), windows.end(),
                  [](const StepWindow& a, const StepWindow& b) { return a.start < b.start; });
        bool apart = true;
        for (int k = 0; k + 1 < count; k++)
            apart = apart && windows[k].start + steps <= windows[k + 1].start;
        if (apart) return windows;
    }
    // windows covering most of the run: one placed uniformly in each of `count` equal strata
    std::vector<StepWindow> windows;
    for (int k = 0; k < count; k++) {
        const int64_t stratum_begin = (int64_t)total * k / count;
        const int64_t stratum_end = (int64_t)total * (k + 1) / count;
        const int64_t choices = stratum_end - stratum_begin - steps + 1;
        const int64_t offset = choices > 1 ? (int64_t)rng.next_below((uint64_t)choices) : 0;
        windows.push_back({(int)(stratum_begin + offset), steps});
    }
    return windows;
}

std::vector<StepWindow> single_steps(const std::vector<StepWindow>& windows) {
    std::vector<StepWindow> steps;
    for (const StepWindow& w : windows)
        for (int i = 0; i < w.steps; i++) steps.push_back({w.start + i, 1});
    std::sort(steps.begin(), steps.end(),
              [](const StepWindow& a, const StepWindow& b) { return a.start < b.start; });
    return steps;
}

std::vector<StepWindow> replay_segments(const std::vector<StepWindow>& windows, int total) {
    std::vector<int> cuts = {0, total};
    for (const StepWindow& w : windows) {
        cuts.push_back(w.start);
        cuts.push_back(w.start + w.steps);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::vector<StepWindow> segments;
    for (size_t i = 0; i + 1 < cuts.size(); i++)
        segments.push_back({cuts[i], cuts[i + 1] - cuts[i]});
    return segments;
}

TrainingState initial_state(const GPTConfig& config, uint64_t seed) {
    const size_t n = num_parameters(config);
    TrainingState state;
    state.params.assign(n, 0.0f);
    init_params(state.params.data(), config, seed);
    state.m.assign(n, 0.0f);
    state.v.assign(n, 0.0f);
    return state;
}

namespace {

// The reference kernels' model holding `start`'s weights, and the batch sampler at its step.
struct ReferenceModel {
    GPT model;
    std::vector<int> inputs, targets;
    BatchSampler sampler;

    ReferenceModel(const TaskSpec& task, const std::vector<int>& train_tokens, uint64_t seed,
                   const TrainingState& start)
        : inputs(task.train.batch * task.model.context),
          targets(task.train.batch * task.model.context),
          sampler(train_tokens, seed, task.train.batch, task.model.context) {
        gpt_create(model, gpt_config_of(task), task.train.batch, task.model.context,
                   reference_kernels());
        model.params_memory = start.params;
        sampler.skip(start.step);
    }
};

}  // namespace

ReferenceSteps run_reference_steps(const TaskSpec& task, const std::vector<int>& train_tokens,
                                   uint64_t seed, const TrainingState& start, int steps) {
    ReferenceModel r(task, train_tokens, seed, start);
    GPT& model = r.model;
    model.m_memory = start.m;
    model.v_memory = start.v;
    ReferenceSteps out;
    for (int step = start.step; step < start.step + steps; step++) {
        r.sampler.next(r.inputs.data(), r.targets.data());
        gpt_forward(model, r.inputs.data(), r.targets.data());
        gpt_zero_grad(model);
        gpt_backward(model, r.inputs.data(), r.targets.data());
        gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                   task.train.weight_decay, step + 1);
        out.losses.push_back(model.mean_loss);
    }
    out.end.step = start.step + steps;
    out.end.params = std::move(model.params_memory);
    out.end.m = std::move(model.m_memory);
    out.end.v = std::move(model.v_memory);
    return out;
}

float reference_loss(const TaskSpec& task, const std::vector<int>& train_tokens, uint64_t seed,
                     const TrainingState& state) {
    ReferenceModel r(task, train_tokens, seed, state);
    r.sampler.next(r.inputs.data(), r.targets.data());
    gpt_forward(r.model, r.inputs.data(), r.targets.data());
    return r.model.mean_loss;
}

double WindowDeviation::state_rel() const {
    return std::max({params_rel, m_rel, v_rel});
}

Status check_moments_plausible(const TrainingState& state, const TrainSpec& train) {
    const double b1 = train.beta1, b2 = train.beta2;
    // m_t = (1-b1) sum b1^(t-k) g_k and v_t = (1-b2) sum b2^(t-k) g_k^2, so by Cauchy-Schwarz
    // m_t^2 <= (1-b1)^2 / ((1-b2)(1 - b1^2/b2)) v_t when b1^2 < b2 (fp32 rounding: 1% slack)
    if (b1 * b1 < b2 && b2 < 1) {
        const double k = (1 - b1) * (1 - b1) / ((1 - b2) * (1 - b1 * b1 / b2)) * 1.0201;
        for (size_t i = 0; i < state.m.size(); i++) {
            const double m = state.m[i], v = state.v[i];
            if (m * m > k * v + 1e-36) {
                return failure("its first moment at parameter " + std::to_string(i) + " is " +
                               std::to_string(m) + " with a second moment of " + std::to_string(v) +
                               ": no history of gradients gives AdamW these moments");
            }
        }
    }
    const double correction = 1 - std::pow(b2, std::max(1, state.step));
    for (size_t i = 0; i < state.v.size(); i++) {
        if (!std::isfinite((float)(state.v[i] / correction)))
            return failure("its bias-corrected second moment overflows at parameter " +
                           std::to_string(i));
    }
    return {};
}

WindowDeviation compare_window(const StepWindow& window, const TrainingState& start,
                               const ReferenceSteps& reference,
                               const std::vector<float>& submission_losses,
                               const TrainingState& submission_end, const GPTConfig& config) {
    WindowDeviation d;
    d.window = window;
    for (size_t i = 0; i < reference.losses.size() && i < submission_losses.size(); i++) {
        const double diff = std::fabs((double)submission_losses[i] - reference.losses[i]);
        if (diff > d.max_loss_diff || std::isnan(diff)) {
            d.max_loss_diff = diff;
            d.worst_step = window.start + (int)i;
        }
    }
    // per parameter tensor, and per layer for the tensors stacked over layers
    const std::vector<ParamSlice> slices = param_slices(config);
    const std::vector<TensorDistance> distances =
        tensor_distances(submission_end.params, reference.end.params, start.params, config);
    for (size_t i = 0; i < slices.size(); i++) {
        const TensorDistance& t = distances[i];
        if (t.rel > d.tensor_rel || std::isnan(t.rel)) {
            d.tensor_rel = t.rel;
            d.worst_tensor = t.slice.name();
        }
        // moments that stop the reference's own update show as a part it never moves
        const ParamSlice& s = slices[i];
        auto part = [&](const std::vector<float>& x) {
            return std::vector<float>(x.begin() + s.offset, x.begin() + s.offset + s.size);
        };
        if (t.moved == 0 && d.frozen_tensor.empty() &&
            l2_distance(part(reference.end.m), part(start.m)) > 0)
            d.frozen_tensor = s.name();
    }
    d.params_rel = relative_distance(submission_end.params, reference.end.params, start.params);
    d.m_rel = relative_distance(submission_end.m, reference.end.m, start.m);
    d.v_rel = relative_distance(submission_end.v, reference.end.v, start.v);
    return d;
}

double adam_step_rms(const TrainingState& state, const TrainSpec& train) {
    const int t = std::max(1, state.step);
    const double m_correction = 1 - std::pow((double)train.beta1, t);
    const double v_correction = 1 - std::pow((double)train.beta2, t);
    double sum = 0;
    for (size_t i = 0; i < state.m.size(); i++) {
        const double m_hat = state.m[i] / m_correction;
        const double v_hat = std::max(0.0, (double)state.v[i]) / v_correction;
        const double r = m_hat / (std::sqrt(v_hat) + train.eps);
        sum += r * r;
    }
    return state.m.empty() ? 0 : std::sqrt(sum / (double)state.m.size());
}

WindowDeviation check_step(const TaskSpec& task, const std::vector<int>& train_tokens,
                           uint64_t seed, const TrainingState& before, float submission_loss,
                           const TrainingState& after) {
    const ReferenceSteps reference = run_reference_steps(task, train_tokens, seed, before, 1);
    WindowDeviation d = compare_window({before.step, 1}, before, reference, {submission_loss},
                                       after, gpt_config_of(task));
    d.min_adam_step = adam_step_rms(reference.end, task.train);
    if (!std::isfinite(d.min_adam_step)) d.min_adam_step = 0;
    d.weakest_step = before.step;
    return d;
}

void include_step(WindowDeviation& window, const WindowDeviation& step) {
    auto larger = [](double candidate, double current) {
        return candidate > current || (std::isnan(candidate) && !std::isnan(current));
    };
    if (larger(step.max_loss_diff, window.max_loss_diff)) {
        window.max_loss_diff = step.max_loss_diff;
        window.worst_step = step.worst_step;
    }
    if (larger(step.tensor_rel, window.tensor_rel)) {
        window.tensor_rel = step.tensor_rel;
        window.worst_tensor = step.worst_tensor;
    }
    if (window.frozen_tensor.empty()) window.frozen_tensor = step.frozen_tensor;
    if (step.min_adam_step < window.min_adam_step || window.weakest_step < 0) {
        window.min_adam_step = step.min_adam_step;
        window.weakest_step = step.weakest_step;
    }
    if (larger(step.params_rel, window.params_rel)) window.params_rel = step.params_rel;
    if (larger(step.m_rel, window.m_rel)) window.m_rel = step.m_rel;
    if (larger(step.v_rel, window.v_rel)) window.v_rel = step.v_rel;
}

}  // namespace trainopt
