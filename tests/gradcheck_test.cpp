// Finite-difference checks of every backward kernel, for every registered kernel table.
// Objective: L = sum(out * w) for a random w, so dL/dout = w; each backward must match the
// central difference of L with respect to each input it differentiates.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "contract/rng.h"
#include "kernels/registry.h"

namespace trainopt {
namespace {

std::vector<float> random_vector(size_t n, Rng& rng, float scale = 1.0f) {
    std::vector<float> v(n);
    for (float& x : v) x = (float)(scale * rng.next_normal());
    return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) s += (double)a[i] * b[i];
    return s;
}

// Compares analytic gradient `grad` of `x` with central differences of objective().
void expect_gradient(const char* what, std::vector<float>& x, const std::vector<float>& grad,
                     const std::function<double()>& objective, float h = 1e-2f) {
    Rng pick(99);
    const int samples = std::min<int>((int)x.size(), 24);
    for (int s = 0; s < samples; s++) {
        size_t i = x.size() <= 24 ? (size_t)s : (size_t)pick.next_below(x.size());
        const float saved = x[i];
        x[i] = saved + h;
        double plus = objective();
        x[i] = saved - h;
        double minus = objective();
        x[i] = saved;
        double numeric = (plus - minus) / (2.0 * h);
        double tolerance = 3e-3 + 3e-2 * std::max(std::fabs(numeric), std::fabs((double)grad[i]));
        EXPECT_NEAR(grad[i], numeric, tolerance) << what << " element " << i;
    }
}

class GradCheck : public ::testing::TestWithParam<NamedKernelTable> {};

TEST_P(GradCheck, Encoder) {
    const KernelTable& k = GetParam().table;
    const int B = 2, T = 3, C = 4, V = 5;
    Rng rng(1);
    std::vector<int> inp = {0, 3, 3, 1, 4, 2};
    auto wte = random_vector(V * C, rng), wpe = random_vector(T * C, rng);
    auto w = random_vector(B * T * C, rng);
    std::vector<float> out(B * T * C);
    auto objective = [&] {
        k.encoder_forward(out.data(), inp.data(), wte.data(), wpe.data(), B, T, C);
        return dot(out, w);
    };
    std::vector<float> dwte(V * C), dwpe(T * C);
    k.encoder_backward(dwte.data(), dwpe.data(), w.data(), inp.data(), B, T, C);
    expect_gradient("dwte", wte, dwte, objective);
    expect_gradient("dwpe", wpe, dwpe, objective);
}

TEST_P(GradCheck, LayerNorm) {
    const KernelTable& k = GetParam().table;
    const int B = 2, T = 3, C = 8;
    Rng rng(2);
    auto inp = random_vector(B * T * C, rng), weight = random_vector(C, rng),
         bias = random_vector(C, rng);
    auto w = random_vector(B * T * C, rng);
    std::vector<float> out(B * T * C), mean(B * T), rstd(B * T);
    auto objective = [&] {
        k.layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(),
                            bias.data(), B, T, C);
        return dot(out, w);
    };
    objective();
    std::vector<float> dinp(B * T * C), dweight(C), dbias(C);
    k.layernorm_backward(dinp.data(), dweight.data(), dbias.data(), w.data(), inp.data(),
                         weight.data(), mean.data(), rstd.data(), B, T, C);
    expect_gradient("dinp", inp, dinp, objective, 1e-3f);
    expect_gradient("dweight", weight, dweight, objective);
    expect_gradient("dbias", bias, dbias, objective);
}

TEST_P(GradCheck, Matmul) {
    const KernelTable& k = GetParam().table;
    const int B = 2, T = 3, C = 5, OC = 7;
    Rng rng(3);
    auto inp = random_vector(B * T * C, rng), weight = random_vector(OC * C, rng),
         bias = random_vector(OC, rng);
    auto w = random_vector(B * T * OC, rng);
    std::vector<float> out(B * T * OC);
    auto objective = [&] {
        k.matmul_forward(out.data(), inp.data(), weight.data(), bias.data(), B, T, C, OC);
        return dot(out, w);
    };
    std::vector<float> dinp(B * T * C), dweight(OC * C), dbias(OC);
    k.matmul_backward(dinp.data(), dweight.data(), dbias.data(), w.data(), inp.data(),
                      weight.data(), B, T, C, OC);
    expect_gradient("dinp", inp, dinp, objective);
    expect_gradient("dweight", weight, dweight, objective);
    expect_gradient("dbias", bias, dbias, objective);
    // without a bias the forward must not read one and the backward must not write one
    std::vector<float> out2(B * T * OC);
    k.matmul_forward(out2.data(), inp.data(), weight.data(), nullptr, B, T, C, OC);
    k.matmul_backward(dinp.data(), dweight.data(), nullptr, w.data(), inp.data(), weight.data(), B,
                      T, C, OC);
}

TEST_P(GradCheck, Attention) {
    const KernelTable& k = GetParam().table;
    const int B = 2, T = 5, C = 8, NH = 2;
    Rng rng(4);
    auto inp = random_vector(B * T * 3 * C, rng, 0.5f);
    auto w = random_vector(B * T * C, rng);
    std::vector<float> out(B * T * C), preatt(B * NH * T * T), att(B * NH * T * T);
    auto objective = [&] {
        k.attention_forward(out.data(), preatt.data(), att.data(), inp.data(), B, T, C, NH);
        return dot(out, w);
    };
    objective();
    std::vector<float> dinp(B * T * 3 * C), dpreatt(B * NH * T * T), datt(B * NH * T * T);
    k.attention_backward(dinp.data(), dpreatt.data(), datt.data(), w.data(), inp.data(), att.data(),
                         B, T, C, NH);
    expect_gradient("dinp (q, k, v)", inp, dinp, objective, 1e-3f);
}

TEST_P(GradCheck, Gelu) {
    const KernelTable& k = GetParam().table;
    const int N = 40;
    Rng rng(5);
    auto inp = random_vector(N, rng, 2.0f), w = random_vector(N, rng);
    std::vector<float> out(N);
    auto objective = [&] {
        k.gelu_forward(out.data(), inp.data(), N);
        return dot(out, w);
    };
    std::vector<float> dinp(N);
    k.gelu_backward(dinp.data(), inp.data(), w.data(), N);
    expect_gradient("dinp", inp, dinp, objective, 1e-3f);
}

TEST_P(GradCheck, Residual) {
    const KernelTable& k = GetParam().table;
    const int N = 12;
    Rng rng(6);
    auto a = random_vector(N, rng), b = random_vector(N, rng), w = random_vector(N, rng);
    std::vector<float> out(N);
    auto objective = [&] {
        k.residual_forward(out.data(), a.data(), b.data(), N);
        return dot(out, w);
    };
    std::vector<float> da(N), db(N);
    k.residual_backward(da.data(), db.data(), w.data(), N);
    expect_gradient("dinp1", a, da, objective);
    expect_gradient("dinp2", b, db, objective);
}

TEST_P(GradCheck, SoftmaxCrossEntropy) {
    const KernelTable& k = GetParam().table;
    const int B = 2, T = 3, V = 11;
    Rng rng(7);
    auto logits = random_vector(B * T * V, rng);
    std::vector<int> targets = {0, 5, 10, 3, 3, 7};
    auto dlosses = random_vector(B * T, rng);
    std::vector<float> probs(B * T * V), losses(B * T);
    auto objective = [&] {
        k.softmax_forward(probs.data(), logits.data(), B, T, V);
        k.crossentropy_forward(losses.data(), probs.data(), targets.data(), B, T, V);
        return dot(losses, dlosses);
    };
    objective();
    std::vector<float> dlogits(B * T * V);
    k.crossentropy_softmax_backward(dlogits.data(), dlosses.data(), probs.data(), targets.data(), B,
                                    T, V);
    expect_gradient("dlogits", logits, dlogits, objective, 1e-3f);
}

TEST_P(GradCheck, AdamWFirstStepMovesAgainstTheGradient) {
    const KernelTable& k = GetParam().table;
    std::vector<float> params = {1.0f, -2.0f, 0.5f}, grads = {0.3f, -0.1f, 0.0f};
    std::vector<float> m(3), v(3);
    k.adamw_update(params.data(), grads.data(), m.data(), v.data(), 3, 0.1f, 0.9f, 0.999f, 1e-8f,
                   0.0f, 1);
    // first step: m_hat = g, v_hat = g^2, so each parameter moves by lr * sign(g)
    EXPECT_NEAR(params[0], 0.9f, 1e-5);
    EXPECT_NEAR(params[1], -1.9f, 1e-5);
    EXPECT_NEAR(params[2], 0.5f, 1e-6);
    std::vector<float> decayed = {1.0f}, zero = {0.0f}, m1(1), v1(1);
    k.adamw_update(decayed.data(), zero.data(), m1.data(), v1.data(), 1, 0.1f, 0.9f, 0.999f, 1e-8f,
                   0.5f, 1);
    EXPECT_NEAR(decayed[0], 1.0f - 0.1f * 0.5f, 1e-6);  // decoupled weight decay
}

INSTANTIATE_TEST_SUITE_P(AllKernelTables, GradCheck, ::testing::ValuesIn(kernel_registry()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace trainopt
