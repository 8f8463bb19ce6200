// The approximated-math study of docs/tolerances.md: trains the reference and variants of it
// in-process, on the seeds `trainopt score --seed BASE` uses for a task, and prints the three
// verification deviations exactly as harness/verify.cpp defines them (plus the verdict under
// the task's tolerances). Not a test: a measuring instrument, like bench_kernels.
//
//   approx_math_study TASK.toml BASE_SEED TASK_INDEX REPS VARIANT...
//
// TASK_INDEX is the task's position in its suite (sorted by file name, from 0): the harness
// seeds repetition r of task i from Rng(BASE_SEED + i). VARIANT is SITE:EXP, where SITE says
// where the reference's expf is replaced and EXP by what:
//   SITE  vocab (softmax over the vocabulary), attn (attention softmax), gelu (GELU, computed
//         as x e / (e + 1) with e = exp(2u), u the tanh argument), all; a suffix +reorder also
//         reorders every matmul's fp32 sums (8 lanes, reversed loops): a legitimate submission
//   EXP   libm (expf), cephes (degree-6 polynomial, within 1 ulp: what fast legitimate exps
//         use), cubic (tests/cheats/approx_exp_vocab.patch's, 1.0e-4), cubic0
//         (approx_exp_vocab_exact_zero.patch's: exp(0) = 1 exactly, 1.1e-4), cubic0m (exact
//         at 0 and zero mean relative error, 2.3e-4), taylor3 (7.9e-4), quartic (3.5e-6),
//         quartic0 (exact at 0, 2.9e-6), taylor4 (5.6e-5); maximum relative errors over
//         [-80, 0] in parentheses.
// LAB_TRACE=1 also prints each step's loss difference (first 60 steps).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "contract/batches.h"
#include "contract/rng.h"
#include "harness/verify.h"
#include "kernels/gpt.h"
#include "tasks/data.h"
#include "tasks/task_spec.h"

using namespace trainopt;

namespace {

struct ExpApprox {
    enum Kind { kLibm, kCephes, kPoly, kPatchCubic } kind = kLibm;
    std::vector<float> c;  // c0..cd of p(r) ~ e^r on |r| <= ln2/2
};

float approx_exp(const ExpApprox& a, float x) {
    if (a.kind == ExpApprox::kLibm) return expf(x);
    if (x < -87.0f) return 0.0f;
    if (a.kind == ExpApprox::kPatchCubic) {  // exactly the cheat patches' cubic_exp
        const float n = std::nearbyint(x * 1.44269504f);
        const float r = x - n * 0.693147182f;
        return std::ldexp(a.c[0] + r * (a.c[1] + r * (a.c[2] + r * a.c[3])), (int)n);
    }
    if (x > 88.0f) x = 88.0f;
    const float fx = std::floor(x * 1.44269504088896341f + 0.5f);
    float r = x - fx * 0.693359375f;
    r = r - fx * -2.12194440e-4f;
    float y;
    if (a.kind == ExpApprox::kCephes) {
        const float z = r * r;
        y = 1.9875691500E-4f;
        y = y * r + 1.3981999507E-3f;
        y = y * r + 8.3334519073E-3f;
        y = y * r + 4.1665795894E-2f;
        y = y * r + 1.6666665459E-1f;
        y = y * r + 5.0000001201E-1f;
        y = y * z + r;
        y = y + 1.0f;
    } else {
        y = a.c.back();
        for (int k = (int)a.c.size() - 2; k >= 0; k--) y = y * r + a.c[k];
    }
    return std::ldexp(y, (int)fx);
}

bool make_approx(const std::string& name, ExpApprox& a) {
    // near-minimax coefficients: Chebyshev interpolation (cubic, quartic) or Lawson's
    // iteratively reweighted least squares with p(0) = 1 (cubic0, quartic0; cubic0m also with
    // zero mean of p(r) - e^r over |r| <= ln2/2)
    static const std::map<std::string, std::pair<ExpApprox::Kind, std::vector<float>>> table = {
        {"libm", {ExpApprox::kLibm, {}}},
        {"cephes", {ExpApprox::kCephes, {}}},
        {"cubic",
         {ExpApprox::kPatchCubic, {0.999924481f, 0.99998492f, 0.505025208f, 0.167670697f}}},
        {"cubic0", {ExpApprox::kPatchCubic, {1.0f, 1.00019622f, 0.504133642f, 0.165178388f}}},
        {"cubic0m", {ExpApprox::kPoly, {1.0f, 1.00045371f, 0.503016233f, 0.161961272f}}},
        {"taylor3", {ExpApprox::kPoly, {1.0f, 1.0f, 0.5f, 0.166666672f}}},
        {"quartic",
         {ExpApprox::kPoly, {1.0f, 0.99996227f, 0.499993712f, 0.167922154f, 0.0418757647f}}},
        {"quartic0",
         {ExpApprox::kPoly, {1.0f, 0.9999668f, 0.50003016f, 0.167875648f, 0.0415138304f}}},
        {"taylor4", {ExpApprox::kPoly, {1.0f, 1.0f, 0.5f, 0.166666672f, 0.0416666679f}}},
    };
    auto it = table.find(name);
    if (it == table.end()) return false;
    a.kind = it->second.first;
    a.c = it->second.second;
    return true;
}

// Where the variant's exp is used; the trainer runs single-threaded, so globals are fine.
ExpApprox g_vocab, g_attn, g_gelu;

void softmax_forward(float* probs, const float* logits, int B, int T, int V) {
    for (int bt = 0; bt < B * T; bt++) {
        const float* l = logits + (size_t)bt * V;
        float* p = probs + (size_t)bt * V;
        float maxval = -10000.0f;
        for (int i = 0; i < V; i++) maxval = l[i] > maxval ? l[i] : maxval;
        float sum = 0.0f;
        for (int i = 0; i < V; i++) {
            p[i] = approx_exp(g_vocab, l[i] - maxval);
            sum += p[i];
        }
        for (int i = 0; i < V; i++) p[i] /= sum;
    }
}

void attention_forward(float* out, float* preatt, float* att, const float* inp, int B, int T, int C,
                       int NH) {
    const int C3 = C * 3, hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < NH; h++) {
                const float* query_t = inp + b * T * C3 + t * C3 + h * hs;
                float* preatt_bth = preatt + b * NH * T * T + h * T * T + t * T;
                float* att_bth = att + b * NH * T * T + h * T * T + t * T;
                float maxval = -10000.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float* key_t2 = inp + b * T * C3 + t2 * C3 + h * hs + C;
                    float val = 0.0f;
                    for (int i = 0; i < hs; i++) val += query_t[i] * key_t2[i];
                    val *= scale;
                    maxval = val > maxval ? val : maxval;
                    preatt_bth[t2] = val;
                }
                float expsum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    att_bth[t2] = approx_exp(g_attn, preatt_bth[t2] - maxval);
                    expsum += att_bth[t2];
                }
                const float inv = expsum == 0.0f ? 0.0f : 1.0f / expsum;
                for (int t2 = 0; t2 < T; t2++) att_bth[t2] = t2 <= t ? att_bth[t2] * inv : 0.0f;
                float* out_bth = out + b * T * C + t * C + h * hs;
                for (int i = 0; i < hs; i++) out_bth[i] = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    const float* value_t2 = inp + b * T * C3 + t2 * C3 + h * hs + C * 2;
                    for (int i = 0; i < hs; i++) out_bth[i] += att_bth[t2] * value_t2[i];
                }
            }
        }
    }
}

const float kGeluScale = 0.7978845608028654f;
float half_one_plus_tanh(float x) {  // 0.5 (1 + tanh u) = e / (e + 1), e = exp(2u)
    const float e = approx_exp(g_gelu, 2.0f * kGeluScale * (x + 0.044715f * x * x * x));
    return e / (e + 1.0f);
}
void gelu_forward(float* out, const float* inp, int N) {
    for (int i = 0; i < N; i++) out[i] = inp[i] * half_one_plus_tanh(inp[i]);
}
void gelu_backward(float* dinp, const float* inp, const float* dout, int N) {
    for (int i = 0; i < N; i++) {
        const float x = inp[i], s = half_one_plus_tanh(x);
        const float sech2 = 4.0f * s * (1.0f - s);
        dinp[i] +=
            (s + x * 0.5f * sech2 * kGeluScale * (1.0f + 3.0f * 0.044715f * x * x)) * dout[i];
    }
}

// A legitimate reordering: the reference matmuls with 8-lane partial sums and reversed loops.
void matmul_forward_reordered(float* out, const float* inp, const float* weight, const float* bias,
                              int B, int T, int C, int OC) {
    for (int bt = 0; bt < B * T; bt++) {
        for (int o = 0; o < OC; o++) {
            float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            const float* w = weight + (size_t)o * C;
            const float* x = inp + (size_t)bt * C;
            int i = 0;
            for (; i + 8 <= C; i += 8)
                for (int l = 0; l < 8; l++) lane[l] += x[i + l] * w[i + l];
            for (; i < C; i++) lane[0] += x[i] * w[i];
            const float s = ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
                            ((lane[2] + lane[6]) + (lane[3] + lane[7]));
            out[(size_t)bt * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}
void matmul_backward_reordered(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, int B, int T, int C, int OC) {
    for (int bt = 0; bt < B * T; bt++) {
        for (int o = OC - 1; o >= 0; o--) {
            const float d = dout[(size_t)bt * OC + o];
            for (int i = 0; i < C; i++) dinp[(size_t)bt * C + i] += weight[(size_t)o * C + i] * d;
        }
    }
    std::vector<float> acc(C);
    for (int o = 0; o < OC; o++) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        float db = 0.0f;
        for (int bt = B * T - 1; bt >= 0; bt--) {
            const float d = dout[(size_t)bt * OC + o];
            db += d;
            for (int i = 0; i < C; i++) acc[i] += inp[(size_t)bt * C + i] * d;
        }
        if (dbias) dbias[o] += db;
        for (int i = 0; i < C; i++) dweight[(size_t)o * C + i] += acc[i];
    }
}

struct StudyRun {
    std::vector<float> losses, params;
};

// baseline/train.cpp's loop: same init, batches and steps.
StudyRun train(const TaskSpec& task, const std::vector<int>& tokens, uint64_t seed,
               const KernelTable& kernels) {
    const GPTConfig config = gpt_config_of(task);
    const int B = task.train.batch, T = task.model.context;
    GPT model;
    gpt_create(model, config, B, T, kernels);
    init_params(model.params_memory.data(), config, seed);
    std::vector<int> inputs(B * T), targets(B * T);
    BatchSampler batches(tokens, seed, B, T);
    StudyRun r;
    for (int step = 0; step < task.train.steps; step++) {
        batches.next(inputs.data(), targets.data());
        gpt_forward(model, inputs.data(), targets.data());
        gpt_zero_grad(model);
        gpt_backward(model, inputs.data(), targets.data());
        gpt_update(model, task.train.lr, task.train.beta1, task.train.beta2, task.train.eps,
                   task.train.weight_decay, step + 1);
        r.losses.push_back(model.mean_loss);
    }
    r.params = model.params_memory;
    return r;
}

double l2(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) {
        const double d = (double)a[i] - b[i];
        s += d * d;
    }
    return std::sqrt(s);
}

int usage() {
    fprintf(stderr,
            "usage: approx_math_study TASK.toml BASE_SEED TASK_INDEX REPS SITE:EXP...\n"
            "  SITE: vocab | attn | gelu | all, optionally +reorder\n"
            "  EXP:  libm | cephes | cubic | cubic0 | cubic0m | taylor3 | quartic | quartic0 | "
            "taylor4\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 6) return usage();
    Result<TaskSpec> loaded = load_task(argv[1]);
    if (!loaded) {
        fprintf(stderr, "%s\n", loaded.error().c_str());
        return 1;
    }
    const TaskSpec task = *loaded;
    const uint64_t base = std::strtoull(argv[2], nullptr, 10);
    const int index = std::atoi(argv[3]), reps = std::atoi(argv[4]);
    Result<TokenSplit> data = make_task_data(task);
    if (!data) {
        fprintf(stderr, "%s\n", data.error().c_str());
        return 1;
    }
    const TokenSplit& split = *data;
    // check every variant before the first (slow) training
    for (int v = 5; v < argc; v++) {
        std::string spec = argv[v];
        const size_t colon = spec.find(':');
        ExpApprox a;
        std::string site = colon == std::string::npos ? "" : spec.substr(0, colon);
        if (site.size() > 8 && site.compare(site.size() - 8, 8, "+reorder") == 0)
            site.resize(site.size() - 8);
        if (colon == std::string::npos || !make_approx(spec.substr(colon + 1), a) ||
            (site != "vocab" && site != "attn" && site != "gelu" && site != "all"))
            return usage();
    }
    const GPTConfig config = gpt_config_of(task);
    Rng seeds(base + index);
    for (int rep = 0; rep < reps; rep++) {
        const uint64_t seed = seeds.next_u64() >> 16;
        const StudyRun ref = train(task, split.train, seed, reference_kernels());
        std::vector<float> init(num_parameters(config));
        init_params(init.data(), config, seed);
        const double heldout_ref = heldout_loss(task, ref.params, split.heldout);
        const double update = l2(ref.params, init);
        printf("# task %s seed %llu: reference final loss %.4f, held-out %.4f\n", task.name.c_str(),
               (unsigned long long)seed, ref.losses.back(), heldout_ref);
        for (int v = 5; v < argc; v++) {
            const std::string spec = argv[v];
            const size_t colon = spec.find(':');
            std::string site = spec.substr(0, colon);
            const bool reorder =
                site.size() > 8 && site.compare(site.size() - 8, 8, "+reorder") == 0;
            if (reorder) site.resize(site.size() - 8);
            ExpApprox a;
            make_approx(spec.substr(colon + 1), a);
            g_vocab = g_attn = g_gelu = ExpApprox{};
            KernelTable k = reference_kernels();
            if (site == "vocab" || site == "all") {
                g_vocab = a;
                k.softmax_forward = softmax_forward;
            }
            if (site == "attn" || site == "all") {
                g_attn = a;
                k.attention_forward = attention_forward;
            }
            if (site == "gelu" || site == "all") {
                g_gelu = a;
                k.gelu_forward = gelu_forward;
                k.gelu_backward = gelu_backward;
            }
            if (reorder) {
                k.matmul_forward = matmul_forward_reordered;
                k.matmul_backward = matmul_backward_reordered;
            }
            const StudyRun sub = train(task, split.train, seed, k);
            double max_loss = 0;
            int worst = -1;
            for (size_t s = 0; s < sub.losses.size(); s++) {
                const double d = std::fabs((double)sub.losses[s] - ref.losses[s]);
                if (d > max_loss || std::isnan(d)) {
                    max_loss = d;
                    worst = (int)s;
                }
            }
            if (getenv("LAB_TRACE")) {
                printf("trace %s:", spec.c_str());
                for (size_t s = 0; s < sub.losses.size() && s < 60; s++)
                    printf(" %.3g", (double)sub.losses[s] - ref.losses[s]);
                printf("\n");
            }
            const double heldout =
                std::fabs(heldout_loss(task, sub.params, split.heldout) - heldout_ref);
            const double weights = l2(sub.params, ref.params) / update;
            const Tolerances& tol = task.tolerances;
            const bool valid = max_loss <= tol.loss_abs && heldout <= tol.heldout_abs &&
                               weights <= tol.weights_rel;
            printf("%s\t%llu\t%s\tloss %.3g@%d\theld-out %.3g\tweights %.3g\t%s\n",
                   task.name.c_str(), (unsigned long long)seed, spec.c_str(), max_loss, worst,
                   heldout, weights, valid ? "VALID" : "INVALID");
            fflush(stdout);
        }
    }
    return 0;
}
