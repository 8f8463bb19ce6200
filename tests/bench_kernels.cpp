// Google Benchmark: every registered kernel table at the default suite's shapes, with FLOP/s
// counters. Run: build/tests/bench_kernels [--benchmark_filter=matmul]
#include <benchmark/benchmark.h>

#include <vector>

#include "contract/rng.h"
#include "kernels/registry.h"

namespace trainopt {
namespace {

std::vector<float> random_vector(size_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(n);
    for (float& x : v) x = (float)(0.1 * rng.next_normal());
    return v;
}

const KernelTable& table_at(int index) {
    static const std::vector<NamedKernelTable> registry = kernel_registry();
    return registry[index].table;
}

// matmul shapes: {B*T, C, OC} of the matmul-bound task's QKV and FC layers and the LM heads
void BM_MatmulForward(benchmark::State& state) {
    const KernelTable& k = table_at(state.range(0));
    const int BT = state.range(1), C = state.range(2), OC = state.range(3);
    auto inp = random_vector(BT * C, 1), w = random_vector(OC * C, 2), b = random_vector(OC, 3);
    std::vector<float> out(BT * OC);
    for (auto _ : state) k.matmul_forward(out.data(), inp.data(), w.data(), b.data(), 1, BT, C, OC);
    state.counters["FLOP/s"] =
        benchmark::Counter(2.0 * BT * C * OC, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_MatmulBackward(benchmark::State& state) {
    const KernelTable& k = table_at(state.range(0));
    const int BT = state.range(1), C = state.range(2), OC = state.range(3);
    auto inp = random_vector(BT * C, 1), w = random_vector(OC * C, 2),
         dout = random_vector(BT * OC, 4);
    std::vector<float> dinp(BT * C), dw(OC * C), db(OC);
    for (auto _ : state)
        k.matmul_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(), 1,
                          BT, C, OC);
    state.counters["FLOP/s"] =
        benchmark::Counter(4.0 * BT * C * OC, benchmark::Counter::kIsIterationInvariantRate);
}

// attention shapes: {B, T, C, NH} of the long-context and matmul tasks
void BM_Attention(benchmark::State& state) {
    const KernelTable& k = table_at(state.range(0));
    const int B = state.range(1), T = state.range(2), C = state.range(3), NH = state.range(4);
    auto inp = random_vector((size_t)B * T * 3 * C, 5), dout = random_vector((size_t)B * T * C, 6);
    std::vector<float> out((size_t)B * T * C), preatt((size_t)B * NH * T * T),
        att((size_t)B * NH * T * T);
    std::vector<float> dinp(inp.size()), dpreatt(preatt.size()), datt(att.size());
    for (auto _ : state) {
        k.attention_forward(out.data(), preatt.data(), att.data(), inp.data(), B, T, C, NH);
        k.attention_backward(dinp.data(), dpreatt.data(), datt.data(), dout.data(), inp.data(),
                             att.data(), B, T, C, NH);
    }
    // q.k and att.v forward (2 * T^2/2 * C MACs) and roughly twice that backward
    state.counters["FLOP/s"] = benchmark::Counter(3.0 * 2.0 * B * T * (double)T * C,
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

void BM_SoftmaxCrossEntropy(benchmark::State& state) {
    const KernelTable& k = table_at(state.range(0));
    const int BT = state.range(1), V = state.range(2);
    auto logits = random_vector((size_t)BT * V, 7);
    std::vector<float> probs(logits.size()), losses(BT), dlosses(BT, 1.0f / BT),
        dlogits(logits.size());
    std::vector<int> targets(BT, 3);
    for (auto _ : state) {
        k.softmax_forward(probs.data(), logits.data(), 1, BT, V);
        k.crossentropy_forward(losses.data(), probs.data(), targets.data(), 1, BT, V);
        k.crossentropy_softmax_backward(dlogits.data(), dlosses.data(), probs.data(),
                                        targets.data(), 1, BT, V);
    }
    state.SetItemsProcessed(state.iterations() * (int64_t)BT * V);
}

void BM_LayerNormGeluAdamW(benchmark::State& state) {
    const KernelTable& k = table_at(state.range(0));
    const int BT = 256, C = 192, N = BT * 4 * C;
    auto x = random_vector((size_t)BT * C, 8), w = random_vector(C, 9), b = random_vector(C, 10);
    auto g = random_vector(N, 11);
    std::vector<float> out(x.size()), mean(BT), rstd(BT), gelu_out(N), m(N), v(N), p(N);
    for (auto _ : state) {
        k.layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), 1,
                            BT, C);
        k.gelu_forward(gelu_out.data(), g.data(), N);
        k.adamw_update(p.data(), g.data(), m.data(), v.data(), N, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f,
                       1);
    }
}

void table_args(benchmark::internal::Benchmark* b, std::vector<std::vector<int64_t>> shapes) {
    for (int t = 0; t < (int)kernel_registry().size(); t++) {
        for (auto shape : shapes) {
            shape.insert(shape.begin(), t);
            b->Args(shape);
        }
    }
}

BENCHMARK(BM_MatmulForward)
    ->Apply([](auto* b) {
        table_args(b, {{256, 192, 576}, {256, 192, 768}, {128, 64, 8192}});
    }) -> Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatmulBackward)
    ->Apply([](auto* b) {
        table_args(b, {{256, 192, 576}, {128, 64, 8192}});
    }) -> Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attention)->Apply([](auto* b) {
                           table_args(b, {{2, 512, 64, 4}, {4, 64, 192, 4}});
                       }) -> Unit(benchmark::kMillisecond);
BENCHMARK(BM_SoftmaxCrossEntropy)->Apply([](auto* b) {
                                     table_args(b, {{128, 8192}, {128, 256}});
                                 }) -> Unit(benchmark::kMillisecond);
BENCHMARK(BM_LayerNormGeluAdamW)->DenseRange(0, 1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace trainopt

BENCHMARK_MAIN();
