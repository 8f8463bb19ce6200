#include "contract/model_layout.h"

#include <cmath>

#include "contract/rng.h"

namespace trainopt {

namespace {

enum ParamTensor {
    wte,
    wpe,
    ln1w,
    ln1b,
    qkvw,
    qkvb,
    attprojw,
    attprojb,
    ln2w,
    ln2b,
    fcw,
    fcb,
    fcprojw,
    fcprojb,
    lnfw,
    lnfb
};

}  // namespace

const char* const kParamTensorNames[kNumParamTensors] = {
    "wte",  "wpe",  "ln1w", "ln1b", "qkvw",    "qkvb",    "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw",  "fcb",  "fcprojw", "fcprojb", "lnfw",     "lnfb"};

GPTConfig gpt_config_of(const TaskSpec& task) {
    return GPTConfig{task.model.vocab_size, task.model.context, task.model.d_model,
                     task.model.layers, task.model.heads};
}

std::array<size_t, kNumParamTensors> param_tensor_sizes(const GPTConfig& cfg) {
    const size_t V = cfg.vocab_size, T = cfg.max_seq_len, C = cfg.channels, L = cfg.num_layers;
    return {V * C, T * C, L * C,         L * C,     L * 3 * C * C, L * 3 * C, L * C * C, L * C,
            L * C, L * C, L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C,     C,         C};
}

size_t num_parameters(const GPTConfig& config) {
    size_t total = 0;
    for (size_t n : param_tensor_sizes(config)) total += n;
    return total;
}

ParamInit param_init(int tensor, const GPTConfig& config) {
    switch (tensor) {
        case ln1w:
        case ln2w:
        case lnfw:
            return {ParamInit::Kind::ones, 1.0f};
        case ln1b:
        case ln2b:
        case lnfb:
        case qkvb:
        case attprojb:
        case fcb:
        case fcprojb:
            return {ParamInit::Kind::zeros, 1.0f};
        case attprojw:
        case fcprojw:
            return {ParamInit::Kind::normal, 1.0f / std::sqrt(2.0f * config.num_layers)};
        default:
            return {ParamInit::Kind::normal, 1.0f};
    }
}

void init_params(float* params, const GPTConfig& config, uint64_t seed) {
    Rng rng(init_stream_seed(seed));
    const auto sizes = param_tensor_sizes(config);
    float* p = params;
    for (int i = 0; i < kNumParamTensors; i++) {
        const ParamInit init = param_init(i, config);
        for (size_t j = 0; j < sizes[i]; j++) {
            switch (init.kind) {
                case ParamInit::Kind::ones:
                    p[j] = 1.0f;
                    break;
                case ParamInit::Kind::zeros:
                    p[j] = 0.0f;
                    break;
                case ParamInit::Kind::normal:
                    p[j] = static_cast<float>(0.02 * rng.next_normal()) * init.scale;
                    break;
            }
        }
        p += sizes[i];
    }
}

}  // namespace trainopt
