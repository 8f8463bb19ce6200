#include "scoring/machine_peak.h"

#include <cblas.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

extern "C" void openblas_set_num_threads(int);

namespace trainopt {

double measure_peak_gflops(int threads) {
    openblas_set_num_threads(threads);
    const int n = 1024;
    std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n, 0.0f);
    double best = 0;
    for (int trial = 0; trial < 20; trial++) {
        auto start = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                    n, 0.0f, c.data(), n);
        std::chrono::duration<double> dt = std::chrono::steady_clock::now() - start;
        best = std::max(best, 2.0 * n * n * n / dt.count() / 1e9);
    }
    return best;
}

namespace {

using Clock = std::chrono::steady_clock;

// One loop per vector ISA: `rounds` rounds of multiply-adds on independent accumulators kept in
// registers, acc = acc * b + c (converges to 1: no overflow, no denormals, no memory traffic).
// There are more accumulators than FMA latency x FMA ports (at most 5 x 2 on current x86
// cores), so only the arithmetic throughput limits the loop. Each returns the FLOPs it did (a
// multiply-add counts as 2) and adds the accumulators to *sink so they must be computed.
using FmaLoop = double (*)(int64_t rounds, float* sink);

#if defined(__x86_64__)

__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t rounds, float* sink) {
    constexpr int kAcc = 16;  // of 32 zmm registers
    __m512 acc[kAcc];
    for (int k = 0; k < kAcc; k++) acc[k] = _mm512_set1_ps(1.0f + 0.001f * static_cast<float>(k));
    const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(0.0001f);
    for (int64_t r = 0; r < rounds; r++) {
#pragma GCC unroll 16
        for (int k = 0; k < kAcc; k++) acc[k] = _mm512_fmadd_ps(acc[k], b, c);
    }
    alignas(64) float lanes[16];
    for (int k = 1; k < kAcc; k++) acc[0] = _mm512_add_ps(acc[0], acc[k]);
    _mm512_store_ps(lanes, acc[0]);
    for (float v : lanes) *sink += v;
    return 2.0 * 16 * kAcc * static_cast<double>(rounds);
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t rounds, float* sink) {
    constexpr int kAcc = 12;  // of 16 ymm registers
    __m256 acc[kAcc];
    for (int k = 0; k < kAcc; k++) acc[k] = _mm256_set1_ps(1.0f + 0.001f * static_cast<float>(k));
    const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(0.0001f);
    for (int64_t r = 0; r < rounds; r++) {
#pragma GCC unroll 12
        for (int k = 0; k < kAcc; k++) acc[k] = _mm256_fmadd_ps(acc[k], b, c);
    }
    alignas(32) float lanes[8];
    for (int k = 1; k < kAcc; k++) acc[0] = _mm256_add_ps(acc[0], acc[k]);
    _mm256_store_ps(lanes, acc[0]);
    for (float v : lanes) *sink += v;
    return 2.0 * 8 * kAcc * static_cast<double>(rounds);
}

// Without FMA a multiply-add is a multiply and an add (2 FLOPs, 2 instructions).
__attribute__((target("avx"))) double fma_loop_avx(int64_t rounds, float* sink) {
    constexpr int kAcc = 12;
    __m256 acc[kAcc];
    for (int k = 0; k < kAcc; k++) acc[k] = _mm256_set1_ps(1.0f + 0.001f * static_cast<float>(k));
    const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(0.0001f);
    for (int64_t r = 0; r < rounds; r++) {
#pragma GCC unroll 12
        for (int k = 0; k < kAcc; k++) acc[k] = _mm256_add_ps(_mm256_mul_ps(acc[k], b), c);
    }
    alignas(32) float lanes[8];
    for (int k = 1; k < kAcc; k++) acc[0] = _mm256_add_ps(acc[0], acc[k]);
    _mm256_store_ps(lanes, acc[0]);
    for (float v : lanes) *sink += v;
    return 2.0 * 8 * kAcc * static_cast<double>(rounds);
}

double fma_loop_sse2(int64_t rounds, float* sink) {
    constexpr int kAcc = 12;
    __m128 acc[kAcc];
    for (int k = 0; k < kAcc; k++) acc[k] = _mm_set1_ps(1.0f + 0.001f * static_cast<float>(k));
    const __m128 b = _mm_set1_ps(0.9999f), c = _mm_set1_ps(0.0001f);
    for (int64_t r = 0; r < rounds; r++) {
#pragma GCC unroll 12
        for (int k = 0; k < kAcc; k++) acc[k] = _mm_add_ps(_mm_mul_ps(acc[k], b), c);
    }
    alignas(16) float lanes[4];
    for (int k = 1; k < kAcc; k++) acc[0] = _mm_add_ps(acc[0], acc[k]);
    _mm_store_ps(lanes, acc[0]);
    for (float v : lanes) *sink += v;
    return 2.0 * 4 * kAcc * static_cast<double>(rounds);
}

#endif  // __x86_64__

struct IsaLoop {
    const char* name;
    FmaLoop loop;
};

// The loops worth measuring on this CPU: every FMA ISA it has (on some CPUs AVX2 runs at a
// higher clock than AVX-512 and matches its FMA rate), else the widest multiply-and-add one.
std::vector<IsaLoop> loops_for_this_cpu() {
    std::vector<IsaLoop> loops;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) loops.push_back({"avx512f", fma_loop_avx512});
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        loops.push_back({"avx2+fma", fma_loop_avx2});
    if (loops.empty() && __builtin_cpu_supports("avx")) loops.push_back({"avx", fma_loop_avx});
    if (loops.empty()) loops.push_back({"sse2", fma_loop_sse2});
#endif
    return loops;
}

// Units that multiply-add faster than the vector FMA loop (at reduced precision, which fp32
// results can be emulated from) make the loop's rate no ceiling. Empty when there are none.
std::string faster_units_on_this_cpu() {
#if defined(__x86_64__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & (1u << 24)) != 0)
        return "this CPU has AMX tile matrix units, which multiply-add faster than its FMA "
               "vectors";
    return "";
#else
    return "the FMA loops are written for x86-64 only";
#endif
}

// One thread's share of a measurement: short timed chunks of the loop until the deadline, keeping
// the best chunk's rate. A chunk is short enough (~0.25 ms) to fit inside one scheduler time
// slice, so even on a loaded machine many chunks run without being preempted and the best one
// shows what the core does when it runs this thread.
struct ThreadBest {
    double gflops = 0;
    int chunks = 0;
    float sink = 0;
};

void measure_thread(FmaLoop loop, Clock::time_point deadline, ThreadBest& out) {
    constexpr double kChunkSeconds = 0.25e-3;
    int64_t rounds = 64;
    for (;;) {
        const auto start = Clock::now();
        const double flops = loop(rounds, &out.sink);
        const auto end = Clock::now();
        const double seconds = std::chrono::duration<double>(end - start).count();
        out.chunks++;
        // the first, short chunks size the chunk (and warm the core up); only full-size
        // chunks count, so the clock's resolution cannot inflate a rate
        if (seconds < kChunkSeconds / 2 && rounds < (int64_t(1) << 40)) {
            rounds *= 2;
        } else if (seconds > 0) {
            out.gflops = std::max(out.gflops, flops / seconds / 1e9);
        }
        if (end > deadline) return;
    }
}

int usable_cpus() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
    return (int)std::thread::hardware_concurrency();
}

}  // namespace

FmaCeiling measure_fma_ceiling(int threads) {
    const auto began = Clock::now();
    FmaCeiling out;
    out.not_a_ceiling = faster_units_on_this_cpu();
    out.threads = std::max({threads, usable_cpus(), 1});
    constexpr double kSecondsPerIsa = 0.2;
    for (const IsaLoop& isa : loops_for_this_cpu()) {
        // all threads at once, so each core runs at the clock it has when every core is busy
        // (unless the machine's load leaves one idle, which only raises the sum: still a ceiling)
        std::vector<ThreadBest> best(out.threads);
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(kSecondsPerIsa));
        std::vector<std::thread> team;
        for (int i = 0; i < out.threads; i++)
            team.emplace_back(measure_thread, isa.loop, deadline, std::ref(best[i]));
        for (std::thread& t : team) t.join();
        // The ceiling is the sum of every thread's best chunk, not the rate the threads reached
        // together: load from other processes lowers the latter (often to one core's worth on a
        // busy 2-core VM), and a ceiling must not be lowered by load. The sum can only be too
        // high (e.g. two vCPUs sharing one core), which makes the backstop laxer, never wrong.
        double sum = 0;
        for (const ThreadBest& b : best) {
            sum += b.gflops;
            out.trials += b.chunks;
        }
        if (sum > out.gflops) {
            out.gflops = sum;
            out.isa = isa.name;
        }
    }
    out.seconds = std::chrono::duration<double>(Clock::now() - began).count();
    return out;
}

}  // namespace trainopt
