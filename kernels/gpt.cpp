#include "kernels/gpt.h"

#include <chrono>
#include <cmath>
#include <cstring>

namespace trainopt {

const char* const kKernelNames[static_cast<int>(KernelId::count)] = {
    "encoder", "layernorm", "matmul", "attention", "gelu", "residual", "softmax_xent", "adamw"};

namespace {

std::array<size_t, kNumActTensors> act_tensor_sizes(const GPTConfig& cfg, size_t B, size_t T) {
    const size_t C = cfg.channels, L = cfg.num_layers, NH = cfg.num_heads, V = cfg.vocab_size;
    return {B * T * C,
            L * B * T * C,
            L * B * T,
            L * B * T,
            L * B * T * 3 * C,
            L * B * T * C,
            L * B * NH * T * T,
            L * B * NH * T * T,
            L * B * T * C,
            L * B * T * C,
            L * B * T * C,
            L * B * T,
            L * B * T,
            L * B * T * 4 * C,
            L * B * T * 4 * C,
            L * B * T * C,
            L * B * T * C,
            B * T * C,
            B * T,
            B * T,
            B * T * V,
            B * T * V,
            B * T};
}

void point_activations(ActivationTensors& a, float* memory,
                       const std::array<size_t, kNumActTensors>& sizes) {
    float** ptrs[kNumActTensors] = {
        &a.encoded,  &a.ln1,      &a.ln1_mean, &a.ln1_rstd,  &a.qkv,       &a.atty,
        &a.preatt,   &a.att,      &a.attproj,  &a.residual2, &a.ln2,       &a.ln2_mean,
        &a.ln2_rstd, &a.fch,      &a.fch_gelu, &a.fcproj,    &a.residual3, &a.lnf,
        &a.lnf_mean, &a.lnf_rstd, &a.logits,   &a.probs,     &a.losses};
    for (int i = 0; i < kNumActTensors; i++) {
        *ptrs[i] = memory;
        memory += sizes[i];
    }
}

}  // namespace

void point_parameters(ParameterTensors& p, float* memory, const GPTConfig& config) {
    auto sizes = param_tensor_sizes(config);
    float** ptrs[kNumParamTensors] = {&p.wte,      &p.wpe,      &p.ln1w, &p.ln1b, &p.qkvw, &p.qkvb,
                                      &p.attprojw, &p.attprojb, &p.ln2w, &p.ln2b, &p.fcw,  &p.fcb,
                                      &p.fcprojw,  &p.fcprojb,  &p.lnfw, &p.lnfb};
    for (int i = 0; i < kNumParamTensors; i++) {
        *ptrs[i] = memory;
        memory += sizes[i];
    }
}

void gpt_create(GPT& model, const GPTConfig& config, int B, int T, const KernelTable& kernels) {
    model.config = config;
    model.batch_size = B;
    model.seq_len = T;
    model.kernels = kernels;
    const size_t n = num_parameters(config);
    model.params_memory.assign(n, 0.0f);
    model.grads_memory.assign(n, 0.0f);
    model.m_memory.assign(n, 0.0f);
    model.v_memory.assign(n, 0.0f);
    point_parameters(model.params, model.params_memory.data(), config);
    point_parameters(model.grads, model.grads_memory.data(), config);

    auto act_sizes = act_tensor_sizes(config, B, T);
    size_t num_acts = 0;
    for (size_t s : act_sizes) num_acts += s;
    model.acts_memory.assign(num_acts, 0.0f);
    model.grads_acts_memory.assign(num_acts, 0.0f);
    point_activations(model.acts, model.acts_memory.data(), act_sizes);
    point_activations(model.grads_acts, model.grads_acts_memory.data(), act_sizes);
}

std::vector<std::pair<std::string, double>> kernel_seconds_of(const KernelProfile& profile) {
    std::vector<std::pair<std::string, double>> out;
    for (int i = 0; i < static_cast<int>(KernelId::count); i++)
        out.emplace_back(kKernelNames[i], profile.seconds[i]);
    return out;
}

void gpt_forward(GPT& model, const int* inputs, const int* targets) {
    const KernelTable& k = model.kernels;
    KernelProfile& prof = model.profile;
    const int B = model.batch_size, T = model.seq_len;
    const int V = model.config.vocab_size, L = model.config.num_layers;
    const int NH = model.config.num_heads, C = model.config.channels;
    ParameterTensors& params = model.params;
    ActivationTensors& acts = model.acts;

    {
        KernelTimer timer(prof, KernelId::encoder);
        k.encoder_forward(acts.encoded, inputs, params.wte, params.wpe, B, T, C);
    }
    for (int l = 0; l < L; l++) {
        float* residual = l == 0 ? acts.encoded : acts.residual3 + (l - 1) * B * T * C;

        float* l_ln1w = params.ln1w + l * C;
        float* l_ln1b = params.ln1b + l * C;
        float* l_qkvw = params.qkvw + l * 3 * C * C;
        float* l_qkvb = params.qkvb + l * 3 * C;
        float* l_attprojw = params.attprojw + l * C * C;
        float* l_attprojb = params.attprojb + l * C;
        float* l_ln2w = params.ln2w + l * C;
        float* l_ln2b = params.ln2b + l * C;
        float* l_fcw = params.fcw + l * 4 * C * C;
        float* l_fcb = params.fcb + l * 4 * C;
        float* l_fcprojw = params.fcprojw + l * C * 4 * C;
        float* l_fcprojb = params.fcprojb + l * C;

        float* l_ln1 = acts.ln1 + l * B * T * C;
        float* l_ln1_mean = acts.ln1_mean + l * B * T;
        float* l_ln1_rstd = acts.ln1_rstd + l * B * T;
        float* l_qkv = acts.qkv + l * B * T * 3 * C;
        float* l_atty = acts.atty + l * B * T * C;
        float* l_preatt = acts.preatt + (size_t)l * B * NH * T * T;
        float* l_att = acts.att + (size_t)l * B * NH * T * T;
        float* l_attproj = acts.attproj + l * B * T * C;
        float* l_residual2 = acts.residual2 + l * B * T * C;
        float* l_ln2 = acts.ln2 + l * B * T * C;
        float* l_ln2_mean = acts.ln2_mean + l * B * T;
        float* l_ln2_rstd = acts.ln2_rstd + l * B * T;
        float* l_fch = acts.fch + l * B * T * 4 * C;
        float* l_fch_gelu = acts.fch_gelu + l * B * T * 4 * C;
        float* l_fcproj = acts.fcproj + l * B * T * C;
        float* l_residual3 = acts.residual3 + l * B * T * C;

        {
            KernelTimer timer(prof, KernelId::layernorm);
            k.layernorm_forward(l_ln1, l_ln1_mean, l_ln1_rstd, residual, l_ln1w, l_ln1b, B, T, C);
        }
        {
            KernelTimer timer(prof, KernelId::matmul);
            k.matmul_forward(l_qkv, l_ln1, l_qkvw, l_qkvb, B, T, C, 3 * C);
        }
        {
            KernelTimer timer(prof, KernelId::attention);
            k.attention_forward(l_atty, l_preatt, l_att, l_qkv, B, T, C, NH);
        }
        {
            KernelTimer timer(prof, KernelId::matmul);
            k.matmul_forward(l_attproj, l_atty, l_attprojw, l_attprojb, B, T, C, C);
        }
        {
            KernelTimer timer(prof, KernelId::residual);
            k.residual_forward(l_residual2, residual, l_attproj, B * T * C);
        }
        {
            KernelTimer timer(prof, KernelId::layernorm);
            k.layernorm_forward(l_ln2, l_ln2_mean, l_ln2_rstd, l_residual2, l_ln2w, l_ln2b, B, T,
                                C);
        }
        {
            KernelTimer timer(prof, KernelId::matmul);
            k.matmul_forward(l_fch, l_ln2, l_fcw, l_fcb, B, T, C, 4 * C);
        }
        {
            KernelTimer timer(prof, KernelId::gelu);
            k.gelu_forward(l_fch_gelu, l_fch, B * T * 4 * C);
        }
        {
            KernelTimer timer(prof, KernelId::matmul);
            k.matmul_forward(l_fcproj, l_fch_gelu, l_fcprojw, l_fcprojb, B, T, 4 * C, C);
        }
        {
            KernelTimer timer(prof, KernelId::residual);
            k.residual_forward(l_residual3, l_residual2, l_fcproj, B * T * C);
        }
    }
    float* residual = acts.residual3 + (L - 1) * B * T * C;
    {
        KernelTimer timer(prof, KernelId::layernorm);
        k.layernorm_forward(acts.lnf, acts.lnf_mean, acts.lnf_rstd, residual, params.lnfw,
                            params.lnfb, B, T, C);
    }
    {
        KernelTimer timer(prof, KernelId::matmul);
        k.matmul_forward(acts.logits, acts.lnf, params.wte, nullptr, B, T, C, V);
    }
    {
        KernelTimer timer(prof, KernelId::softmax_xent);
        k.softmax_forward(acts.probs, acts.logits, B, T, V);
        k.crossentropy_forward(acts.losses, acts.probs, targets, B, T, V);
    }

    float mean_loss = 0.0f;
    for (int i = 0; i < B * T; i++) mean_loss += acts.losses[i];
    model.mean_loss = mean_loss / (B * T);
}

void gpt_zero_grad(GPT& model) {
    std::memset(model.grads_memory.data(), 0, model.grads_memory.size() * sizeof(float));
    std::memset(model.grads_acts_memory.data(), 0, model.grads_acts_memory.size() * sizeof(float));
}

void gpt_backward(GPT& model, const int* inputs, const int* targets) {
    const KernelTable& k = model.kernels;
    KernelProfile& prof = model.profile;
    const int B = model.batch_size, T = model.seq_len;
    const int V = model.config.vocab_size, L = model.config.num_layers;
    const int NH = model.config.num_heads, C = model.config.channels;
    ParameterTensors& params = model.params;
    ParameterTensors& grads = model.grads;
    ActivationTensors& acts = model.acts;
    ActivationTensors& grads_acts = model.grads_acts;

    // the loss is the mean over (B,T), so each position's loss has gradient 1/(B*T)
    const float dloss_mean = 1.0f / (B * T);
    for (int i = 0; i < B * T; i++) grads_acts.losses[i] = dloss_mean;

    {
        KernelTimer timer(prof, KernelId::softmax_xent);
        k.crossentropy_softmax_backward(grads_acts.logits, grads_acts.losses, acts.probs, targets,
                                        B, T, V);
    }
    {
        KernelTimer timer(prof, KernelId::matmul);
        k.matmul_backward(grads_acts.lnf, grads.wte, nullptr, grads_acts.logits, acts.lnf,
                          params.wte, B, T, C, V);
    }
    float* residual = acts.residual3 + (L - 1) * B * T * C;
    float* dresidual = grads_acts.residual3 + (L - 1) * B * T * C;
    {
        KernelTimer timer(prof, KernelId::layernorm);
        k.layernorm_backward(dresidual, grads.lnfw, grads.lnfb, grads_acts.lnf, residual,
                             params.lnfw, acts.lnf_mean, acts.lnf_rstd, B, T, C);
    }

    for (int l = L - 1; l >= 0; l--) {
        residual = l == 0 ? acts.encoded : acts.residual3 + (l - 1) * B * T * C;
        dresidual = l == 0 ? grads_acts.encoded : grads_acts.residual3 + (l - 1) * B * T * C;

        float* l_ln1w = params.ln1w + l * C;
        float* l_qkvw = params.qkvw + l * 3 * C * C;
        float* l_attprojw = params.attprojw + l * C * C;
        float* l_ln2w = params.ln2w + l * C;
        float* l_fcw = params.fcw + l * 4 * C * C;
        float* l_fcprojw = params.fcprojw + l * C * 4 * C;
        float* dl_ln1w = grads.ln1w + l * C;
        float* dl_ln1b = grads.ln1b + l * C;
        float* dl_qkvw = grads.qkvw + l * 3 * C * C;
        float* dl_qkvb = grads.qkvb + l * 3 * C;
        float* dl_attprojw = grads.attprojw + l * C * C;
        float* dl_attprojb = grads.attprojb + l * C;
        float* dl_ln2w = grads.ln2w + l * C;
        float* dl_ln2b = grads.ln2b + l * C;
        float* dl_fcw = grads.fcw + l * 4 * C * C;
        float* dl_fcb = grads.fcb + l * 4 * C;
        float* dl_fcprojw = grads.fcprojw + l * C * 4 * C;
        float* dl_fcprojb = grads.fcprojb + l * C;

        float* l_ln1 = acts.ln1 + l * B * T * C;
        float* l_ln1_mean = acts.ln1_mean + l * B * T;
        float* l_ln1_rstd = acts.ln1_rstd + l * B * T;
        float* l_qkv = acts.qkv + l * B * T * 3 * C;
        float* l_atty = acts.atty + l * B * T * C;
        float* l_att = acts.att + (size_t)l * B * NH * T * T;
        float* l_residual2 = acts.residual2 + l * B * T * C;
        float* l_ln2 = acts.ln2 + l * B * T * C;
        float* l_ln2_mean = acts.ln2_mean + l * B * T;
        float* l_ln2_rstd = acts.ln2_rstd + l * B * T;
        float* l_fch = acts.fch + l * B * T * 4 * C;
        float* l_fch_gelu = acts.fch_gelu + l * B * T * 4 * C;

        float* dl_ln1 = grads_acts.ln1 + l * B * T * C;
        float* dl_qkv = grads_acts.qkv + l * B * T * 3 * C;
        float* dl_atty = grads_acts.atty + l * B * T * C;
        float* dl_preatt = grads_acts.preatt + (size_t)l * B * NH * T * T;
        float* dl_att = grads_acts.att + (size_t)l * B * NH * T * T;
        float* dl_attproj = grads_acts.attproj + l * B * T * C;
        float* dl_residual2 = grads_acts.residual2 + l * B * T * C;
        float* dl_ln2 = grads_acts.ln2 + l * B * T * C;
        float* dl_fch = grads_acts.fch + l * B * T * 4 * C;
        float* dl_fch_gelu = grads_acts.fch_gelu + l * B * T * 4 * C;
        float* dl_fcproj = grads_acts.fcproj + l * B * T * C;
        float* dl_residual3 = grads_acts.residual3 + l * B * T * C;

        {
            KernelTimer timer(prof, KernelId::residual);
            k.residual_backward(dl_residual2, dl_fcproj, dl_residual3, B * T * C);
        }
        {
            KernelTimer timer(prof, KernelId::matmul);
            k.matmul_backward(dl_fch_gelu, dl_fcprojw, dl_fcprojb, dl_fcproj, l_fch_gelu, l_fcprojw,
                              B, T, 4 * C, C);
        }
        {
            KernelTimer timer(prof, KernelId::gelu);
            k.gelu_backward(dl_fch, l_fch, dl_fch_gelu, B * T * 4 * C);
        }
        {
            KernelTimer timer(prof, KernelId::matmul);
            k.matmul_backward(dl_ln2, dl_fcw, dl_fcb, dl_fch, l_ln2, l_fcw, B, T, C, 4 * C);
        }
        {
            KernelTimer timer(prof, KernelId::layernorm);
            k.layernorm_backward(dl_residual2, dl_ln2w, dl_ln2b, dl_ln2, l_residual2, l_ln2w,
                                 l_ln2_mean, l_ln2_rstd, B, T, C);
        }
        {
            KernelTimer timer(prof, KernelId::residual);
            k.residual_backward(dresidual, dl_attproj, dl_residual2, B * T * C);
        }
        {
            KernelTimer timer(prof, KernelId::matmul);
            k.matmul_backward(dl_atty, dl_attprojw, dl_attprojb, dl_attproj, l_atty, l_attprojw, B,
                              T, C, C);
        }
        {
            KernelTimer timer(prof, KernelId::attention);
            k.attention_backward(dl_qkv, dl_preatt, dl_att, dl_atty, l_qkv, l_att, B, T, C, NH);
        }
        {
            KernelTimer timer(prof, KernelId::matmul);
            k.matmul_backward(dl_ln1, dl_qkvw, dl_qkvb, dl_qkv, l_ln1, l_qkvw, B, T, C, 3 * C);
        }
        {
            KernelTimer timer(prof, KernelId::layernorm);
            k.layernorm_backward(dresidual, dl_ln1w, dl_ln1b, dl_ln1, residual, l_ln1w, l_ln1_mean,
                                 l_ln1_rstd, B, T, C);
        }
    }
    {
        KernelTimer timer(prof, KernelId::encoder);
        k.encoder_backward(grads.wte, grads.wpe, grads_acts.encoded, inputs, B, T, C);
    }
}

void gpt_update(GPT& model, float lr, float beta1, float beta2, float eps, float weight_decay,
                int t) {
    KernelTimer timer(model.profile, KernelId::adamw);
    model.kernels.adamw_update(model.params_memory.data(), model.grads_memory.data(),
                               model.m_memory.data(), model.v_memory.data(),
                               model.params_memory.size(), lr, beta1, beta2, eps, weight_decay, t);
}

}  // namespace trainopt
