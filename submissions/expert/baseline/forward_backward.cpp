#include "forward_backward.h"

#include <algorithm>
#include <cstddef>

#include "attention.h"
#include "encoder.h"
#include "fast_math.h"
#include "layernorm.h"
#include "lm_head.h"
#include "matmul.h"
#include "parallel_range.h"

namespace trainopt {

float replica_forward(const Model& model, Replica& rep, const int* inputs, const int* targets,
                      int total_rows) {
    const bool par = rep.par;
    const int B = rep.B, T = model.T, BT = B * T;
    const int C = model.cfg.channels, L = model.cfg.num_layers, NH = model.cfg.num_heads;
    const int V = model.cfg.vocab_size;
    const ParameterTensors& p = model.p;
    Activations& a = rep.a;
    encoder_forward(a.encoded.data(), inputs, p.wte, p.wpe, B, T, C);
    for (int l = 0; l < L; l++) {
        const size_t o1 = (size_t)l * BT * C, o3 = o1 * 3, o4 = o1 * 4, ob = (size_t)l * BT;
        const float* residual =
            l == 0 ? a.encoded.data() : a.residual3.data() + o1 - (size_t)BT * C;
        // attention: residual2 = residual + attproj(attention(qkv(ln1(residual))))
        {
            KernelTimer timer(rep.profile, KernelId::layernorm);
            layernorm_forward(par, a.ln1.data() + o1, a.ln1_mean.data() + ob,
                              a.ln1_rstd.data() + ob, residual, p.ln1w + l * C, p.ln1b + l * C, BT,
                              C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.layers, a.qkv.data() + o3, a.ln1.data() + o1,
                           p.qkvw + (size_t)l * 3 * C * C, p.qkvb + l * 3 * C, nullptr, BT, C,
                           3 * C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::attention);
            const size_t oh = (size_t)l * B * NH * T;
            attention_forward(par, a.atty.data() + o1, a.att.data() + oh * T, a.att_max.data() + oh,
                              a.att_inv.data() + oh, a.qkv.data() + o3, B, T, C, NH, rep.scratch);
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.layers, a.residual2.data() + o1, a.atty.data() + o1,
                           p.attprojw + (size_t)l * C * C, p.attprojb + l * C, residual, BT, C, C);
        }
        // MLP: residual3 = residual2 + fcproj(gelu(fc(ln2(residual2))))
        {
            KernelTimer timer(rep.profile, KernelId::layernorm);
            layernorm_forward(par, a.ln2.data() + o1, a.ln2_mean.data() + ob,
                              a.ln2_rstd.data() + ob, a.residual2.data() + o1, p.ln2w + l * C,
                              p.ln2b + l * C, BT, C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.layers, a.fch.data() + o4, a.ln2.data() + o1,
                           p.fcw + (size_t)l * 4 * C * C, p.fcb + l * 4 * C, nullptr, BT, C, 4 * C);
        }
        const int n4 = BT * 4 * C;
        {
            KernelTimer timer(rep.profile, KernelId::gelu);
            parallel_range(par, n4, (double)n4 * 4, 8192, [&](int r0, int r1) {
                fast::gelu_forward(a.fch_gelu.data() + o4 + r0, a.fch.data() + o4 + r0, r1 - r0);
            });
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.layers, a.residual3.data() + o1, a.fch_gelu.data() + o4,
                           p.fcprojw + (size_t)l * 4 * C * C, p.fcprojb + l * C,
                           a.residual2.data() + o1, BT, 4 * C, C);
        }
    }
    // final layernorm, then the LM head (tied to wte) with the loss and dlogits
    const float* last = a.residual3.data() + (size_t)(L - 1) * BT * C;
    {
        KernelTimer timer(rep.profile, KernelId::layernorm);
        layernorm_forward(par, a.lnf.data(), a.lnf_mean.data(), a.lnf_rstd.data(), last, p.lnfw,
                          p.lnfb, BT, C);
    }
    if (model.tiled.logits_transposed) {
        fast::transpose(a.lnf.data(), C, a.lnfT.data(), BT, BT, C);
        lm_head_forward_transposed(a.logits.data(), a.losses.data(), a.chunk_max.data(),
                                   a.col_sum.data(), p.wte, a.lnfT.data(), targets, BT, C, V,
                                   rep.profile);
    } else {
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_forward(par, model.tiled.head, a.logits.data(), a.lnf.data(), p.wte, nullptr,
                           nullptr, BT, C, V);
        }
        KernelTimer timer(rep.profile, KernelId::softmax_xent);
        softmax_xent(par, a.logits.data(), a.losses.data(), targets, BT, V, 1.0f / total_rows);
    }
    float loss_sum = 0.0f;
    for (int i = 0; i < BT; i++) loss_sum += a.losses[i];
    return loss_sum;
}

void replica_backward(const Model& model, Replica& rep, const int* inputs, const int* targets,
                      int total_rows, std::atomic<int>* stages_done) {
    auto stage_done = [&](int stages) {
        if (stages_done != nullptr) stages_done->store(stages, std::memory_order_release);
    };
    const bool par = rep.par;
    const int B = rep.B, T = model.T, BT = B * T;
    const int C = model.cfg.channels, L = model.cfg.num_layers, NH = model.cfg.num_heads;
    const int V = model.cfg.vocab_size;
    const ParameterTensors& p = model.p;
    ParameterTensors& g = rep.g;
    Activations& a = rep.a;
    // Every parameter gradient is written (not accumulated) by its kernel, the LM head's wte
    // gradient first, so the encoder's scatter-adds below land on it; only wpe's needs zeroing.
    std::fill(g.wpe, g.wpe + (size_t)model.cfg.max_seq_len * C, 0.0f);

    // LM head (tied to wte) and the final layernorm; the residual gradient lands in a.dres
    if (model.tiled.logits_transposed) {
        lm_head_backward_transposed(a.logits.data(), a.dln.data(), g.wte, a.chunk_max.data(),
                                    a.col_sum.data(), a.col_factor.data(), p.wte, a.lnf.data(),
                                    targets, BT, C, V, 1.0f / total_rows, rep.profile);
    } else {
        KernelTimer timer(rep.profile, KernelId::matmul);
        linear_backward(par, model.tiled.head, a.dln.data(), g.wte, nullptr, a.logits.data(),
                        a.lnf.data(), p.wte, BT, C, V);
    }
    const float* last = a.residual3.data() + (size_t)(L - 1) * BT * C;
    {
        KernelTimer timer(rep.profile, KernelId::layernorm);
        layernorm_backward(par, a.dres.data(), g.lnfw, g.lnfb, a.dln.data(), last, p.lnfw,
                           a.lnf_mean.data(), a.lnf_rstd.data(), nullptr, BT, C);
    }
    stage_done(1);

    for (int l = L - 1; l >= 0; l--) {
        const size_t o1 = (size_t)l * BT * C, o3 = o1 * 3, o4 = o1 * 4, ob = (size_t)l * BT;
        const float* residual =
            l == 0 ? a.encoded.data() : a.residual3.data() + o1 - (size_t)BT * C;
        // MLP: residual3 = residual2 + fcproj(gelu(fc(ln2(residual2))))
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_backward(par, model.tiled.layers, a.dfch.data(),
                            g.fcprojw + (size_t)l * 4 * C * C, g.fcprojb + l * C, a.dres.data(),
                            a.fch_gelu.data() + o4, p.fcprojw + (size_t)l * 4 * C * C, BT, 4 * C,
                            C);
        }
        const int n4 = BT * 4 * C;
        {
            KernelTimer timer(rep.profile, KernelId::gelu);
            parallel_range(par, n4, (double)n4 * 4, 8192, [&](int r0, int r1) {
                fast::gelu_backward(a.dfch.data() + r0, a.fch.data() + o4 + r0, a.dfch.data() + r0,
                                    r1 - r0);
            });
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_backward(par, model.tiled.layers, a.dln.data(), g.fcw + (size_t)l * 4 * C * C,
                            g.fcb + l * 4 * C, a.dfch.data(), a.ln2.data() + o1,
                            p.fcw + (size_t)l * 4 * C * C, BT, C, 4 * C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::layernorm);
            layernorm_backward(par, a.dres2.data(), g.ln2w + l * C, g.ln2b + l * C, a.dln.data(),
                               a.residual2.data() + o1, p.ln2w + l * C, a.ln2_mean.data() + ob,
                               a.ln2_rstd.data() + ob, a.dres.data(), BT, C);
        }
        // attention: residual2 = residual + attproj(attention(qkv(ln1(residual))))
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_backward(par, model.tiled.layers, a.datty.data(), g.attprojw + (size_t)l * C * C,
                            g.attprojb + l * C, a.dres2.data(), a.atty.data() + o1,
                            p.attprojw + (size_t)l * C * C, BT, C, C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::attention);
            const size_t oh = (size_t)l * B * NH * T;
            attention_backward(par, a.dqkv.data(), a.datty.data(), a.qkv.data() + o3,
                               a.atty.data() + o1, a.att.data() + oh * T, a.att_max.data() + oh,
                               a.att_inv.data() + oh, B, T, C, NH, rep.scratch);
        }
        {
            KernelTimer timer(rep.profile, KernelId::matmul);
            linear_backward(par, model.tiled.layers, a.dln.data(), g.qkvw + (size_t)l * 3 * C * C,
                            g.qkvb + l * 3 * C, a.dqkv.data(), a.ln1.data() + o1,
                            p.qkvw + (size_t)l * 3 * C * C, BT, C, 3 * C);
        }
        {
            KernelTimer timer(rep.profile, KernelId::layernorm);
            layernorm_backward(par, a.dres.data(), g.ln1w + l * C, g.ln1b + l * C, a.dln.data(),
                               residual, p.ln1w + l * C, a.ln1_mean.data() + ob,
                               a.ln1_rstd.data() + ob, a.dres2.data(), BT, C);
        }
        stage_done(L - l + 1);
    }
    // embeddings: wte's gradient adds to the LM head's
    encoder_backward(g.wte, g.wpe, a.dres.data(), inputs, B, T, C);
    stage_done(L + 2);
}

}  // namespace trainopt
