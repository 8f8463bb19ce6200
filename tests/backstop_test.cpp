// The speed-of-light backstop: a run faster than the task's FLOPs at the machine's FMA ceiling
// (beyond the margin) makes the task INVALID; the FLOP count it uses is a lower bound on the
// work of a training step; the ceiling measurement is sane. No test here depends on timing
// beyond what a loaded 2-core VM guarantees.
#include <gtest/gtest.h>

#include <thread>

#include "kernels/gpt.h"
#include "scoring/machine_peak.h"
#include "scoring/report.h"
#include "tasks/task_spec.h"
#include "test_util.h"

namespace trainopt {
namespace {

// --- the FLOP count is a lower bound ---------------------------------------------------------

// Multiply-adds the step's matmuls and attention products perform, counted by a kernel table
// whose kernels only count (so even the long-context task costs nothing to "run").
double g_macs = 0;

// Causal attention products over all heads: every query with the keys up to and including its
// own position, T(T+1)/2 pairs per sequence, each a dot product of the head size (heads x head
// size = C).
double causal_macs(int B, int T, int C) {
    return (double)B * T * (T + 1) / 2.0 * C;
}

KernelTable counting_kernels() {
    KernelTable k{};
    k.encoder_forward = [](float*, const int*, const float*, const float*, int, int, int) {};
    k.encoder_backward = [](float*, float*, const float*, const int*, int, int, int) {};
    k.layernorm_forward = [](float*, float*, float*, const float*, const float*, const float*, int,
                             int, int) {};
    k.layernorm_backward = [](float*, float*, float*, const float*, const float*, const float*,
                              const float*, const float*, int, int, int) {};
    k.matmul_forward = [](float*, const float*, const float*, const float*, int B, int T, int C,
                          int OC) { g_macs += (double)B * T * C * OC; };
    // the input gradient and the weight gradient: two products of the forward's size
    k.matmul_backward = [](float*, float*, float*, const float*, const float*, const float*, int B,
                           int T, int C, int OC) { g_macs += 2.0 * B * T * C * OC; };
    // q.k and att.v
    k.attention_forward = [](float*, float*, float*, const float*, int B, int T, int C, int) {
        g_macs += 2 * causal_macs(B, T, C);
    };
    // d(att) = dout.v, dv = att^T.dout, dq = d(preatt).k, dk = d(preatt)^T.q
    k.attention_backward = [](float*, float*, float*, const float*, const float*, const float*,
                              int B, int T, int C, int) { g_macs += 4 * causal_macs(B, T, C); };
    k.gelu_forward = [](float*, const float*, int) {};
    k.gelu_backward = [](float*, const float*, const float*, int) {};
    k.residual_forward = [](float*, const float*, const float*, int) {};
    k.residual_backward = [](float*, float*, const float*, int) {};
    k.softmax_forward = [](float*, const float*, int, int, int) {};
    k.crossentropy_forward = [](float*, const float*, const int*, int, int, int) {};
    k.crossentropy_softmax_backward = [](float*, const float*, const float*, const int*, int, int,
                                         int) {};
    k.adamw_update = [](float*, const float*, float*, float*, size_t, float, float, float, float,
                        float, int) {};
    return k;
}

// training_step_flops counts only multiply-adds that every step needs, whatever the
// implementation: the matmuls of forward and backward (no operand is structurally zero or one:
// layernorm and GELU outputs are dense, every position has a loss, the first layer's input
// gradient feeds the embedding gradients) and the causal half of attention. Softmax, layernorm,
// GELU and AdamW are not counted at all. If someone adds work to the count that a submission
// could skip, the backstop could fail an honest submission: this test fails first.
TEST(Backstop, StepFlopsAreALowerBoundOnTheMultiplyAddsOfAStep) {
    for (const std::string suite_name : {"default", "test", "text", "text-test"}) {
        Result<Suite> suite = load_suite(suite_name, testing::project_root() + "/tasks");
        ASSERT_TRUE(suite) << suite.error();
        for (const TaskSpec& task : suite->tasks) {
            const GPTConfig config = gpt_config_of(task);
            const int B = task.train.batch, T = task.model.context;
            GPT model;
            gpt_create(model, config, B, T, counting_kernels());
            std::vector<int> tokens(B * T, 0);
            g_macs = 0;
            gpt_forward(model, tokens.data(), tokens.data());
            gpt_zero_grad(model);
            gpt_backward(model, tokens.data(), tokens.data());
            const double counted = 2 * g_macs;  // FLOPs, a multiply-add counting 2
            const double bound = training_step_flops(task);
            EXPECT_LE(bound, counted) << task.name;
            // and not uselessly low: only the causal diagonal (T/2 of T(T+1)/2 pairs) is left out
            EXPECT_GE(bound, 0.97 * counted) << task.name;
        }
    }
}

// --- the check in finalize_report --------------------------------------------------------------

// One task whose 100 GFLOP take exactly 1 s at the 100 GFLOP/s ceiling.
ScoreReport report_with_runs(const std::vector<double>& submission_seconds) {
    ScoreReport r;
    r.created_at = "2026-11-22T00:00:00Z";
    r.submission = "subs/x";
    r.submission_kind = "overlay";
    r.suite = "default";
    r.sandbox = "bubblewrap";
    r.threads = 2;
    r.reps = (int)submission_seconds.size();
    r.complete = true;
    r.peak_gflops = 80;
    r.fma_ceiling.gflops = 100;
    r.fma_ceiling.isa = "avx512f";
    r.fma_ceiling.threads = 2;
    r.fma_ceiling.trials = 800;
    r.fma_ceiling.seconds = 0.4;
    TaskReport t;
    t.name = "matmul";
    t.hot_spot = "matmul-bound";
    t.steps = 50;
    t.step_gflop = 2.0;
    t.seeds.assign(submission_seconds.size(), 7);
    t.baseline_seconds.assign(submission_seconds.size(), 100.0);
    t.submission_seconds = submission_seconds;
    r.tasks = {t};
    finalize_report(r);
    return r;
}

// the fastest run the margin allows, in seconds, for the task above
const double kFastestAllowed = 1.0 / (1 + kBackstopMargin);

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

TEST(Backstop, RunsJustSlowerThanTheBoundMinusTheMarginStayValid) {
    for (double fastest : {kFastestAllowed * 1.001, 1.0, 2.5}) {
        ScoreReport r = report_with_runs({3.0, fastest, 2.9});
        EXPECT_EQ(r.verdict, Verdict::valid) << fastest;
        ASSERT_TRUE(r.tasks[0].valid);
        EXPECT_TRUE(r.tasks[0].reasons.empty());
        EXPECT_DOUBLE_EQ(r.tasks[0].backstop_seconds, 1.0);
        EXPECT_DOUBLE_EQ(r.tasks[0].backstop_fraction, 1.0 / fastest);
        EXPECT_DOUBLE_EQ(r.tasks[0].speedup, 100.0 / 2.9);
        EXPECT_DOUBLE_EQ(r.backstop_margin, kBackstopMargin);
        EXPECT_TRUE(r.warnings.empty());
    }
}

TEST(Backstop, ASingleRunFasterThanTheBoundMinusTheMarginMakesTheTaskInvalid) {
    ScoreReport r = report_with_runs({3.0, kFastestAllowed * 0.999, 2.9});
    EXPECT_EQ(r.verdict, Verdict::invalid);
    const TaskReport& t = r.tasks[0];
    EXPECT_FALSE(t.valid);
    EXPECT_EQ(t.speedup, 0.0);
    ASSERT_EQ(t.reasons.size(), 1u);
    EXPECT_TRUE(starts_with(t.reasons[0], "faster than the machine can do the task's FLOPs: "))
        << t.reasons[0];
    // the numbers: which run, how fast, the work, the bound, the ceiling, the margin
    char run[64], reached[64], margin[64];
    snprintf(run, sizeof(run), "repetition 2 ran in %.4f s", kFastestAllowed * 0.999);
    snprintf(reached, sizeof(reached), "reached %.0f%% of the bound",
             100 / (kFastestAllowed * 0.999));
    snprintf(margin, sizeof(margin), "margin of %.0f%%", 100 * kBackstopMargin);
    for (const char* part : {(const char*)run, "100.00 GFLOP", "at least 1.0000 s",
                             "FMA ceiling of 100.0 GFLOP/s (avx512f, 2 threads)",
                             (const char*)reached, (const char*)margin})
        EXPECT_NE(t.reasons[0].find(part), std::string::npos) << part << " in " << t.reasons[0];
    EXPECT_EQ(r.summary.arithmetic, 0.0);
}

TEST(Backstop, IsAppliedOnceAndSurvivesTheJsonRoundTrip) {
    ScoreReport r = report_with_runs({0.01, 0.02, 0.03});
    finalize_report(r);
    finalize_report(r);
    ASSERT_EQ(r.tasks[0].reasons.size(), 1u);
    Result<ScoreReport> loaded = report_from_json(report_to_json(r));
    ASSERT_TRUE(loaded) << loaded.error();
    const ScoreReport& back = *loaded;
    EXPECT_EQ(back.verdict, Verdict::invalid);
    EXPECT_EQ(back.tasks[0].reasons, r.tasks[0].reasons);
    EXPECT_EQ(report_to_json(back).dump(), report_to_json(r).dump());
    const nlohmann::json j = report_to_json(r);
    EXPECT_EQ(j["machine"]["fma_ceiling"]["gflops"], 100.0);
    EXPECT_EQ(j["machine"]["fma_ceiling"]["isa"], "avx512f");
    EXPECT_EQ(j["machine"]["backstop_margin"], kBackstopMargin);
    EXPECT_DOUBLE_EQ(j["tasks"][0]["backstop_fraction"].get<double>(), 100.0);
}

// A saved report is re-checked when loaded, with this trainopt's margin: editing the recorded
// margin cannot loosen the bound.
TEST(Backstop, ALoadedReportIsRecheckedWithTheBuiltInMargin) {
    nlohmann::json j = report_to_json(report_with_runs({2.0, 2.0, 2.0}));
    j["tasks"][0]["submission_seconds"] = {0.5, 2.0, 2.0};
    j["tasks"][0]["valid"] = true;
    j["machine"]["backstop_margin"] = 100.0;
    Result<ScoreReport> loaded = report_from_json(j);
    ASSERT_TRUE(loaded) << loaded.error();
    const ScoreReport& back = *loaded;
    EXPECT_EQ(back.verdict, Verdict::invalid);
    EXPECT_DOUBLE_EQ(back.backstop_margin, kBackstopMargin);
}

TEST(Backstop, AnInvalidTaskKeepsItsOwnReason) {
    ScoreReport r = report_with_runs({0.01});
    r.tasks[0] = {};
    r.tasks[0].name = "t";
    r.tasks[0].steps = 50;
    r.tasks[0].step_gflop = 2.0;
    r.tasks[0].baseline_seconds = {100};
    r.tasks[0].submission_seconds = {0.01};
    r.tasks[0].valid = false;
    r.tasks[0].reasons = {"loss trajectory differs"};
    finalize_report(r);
    EXPECT_EQ(r.tasks[0].reasons, std::vector<std::string>{"loss trajectory differs"});
    EXPECT_DOUBLE_EQ(r.tasks[0].backstop_fraction, 100.0);  // still shown
}

TEST(Backstop, WithoutACeilingItIsNotAppliedAndTheReportSaysSo) {
    ScoreReport r = report_with_runs({3.0});
    r.fma_ceiling = {};  // a report from before the backstop
    r.tasks[0].submission_seconds = {0.001};
    finalize_report(r);
    finalize_report(r);
    EXPECT_EQ(r.verdict, Verdict::valid);
    EXPECT_EQ(r.tasks[0].backstop_seconds, 0.0);
    EXPECT_EQ(r.tasks[0].backstop_fraction, 0.0);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_EQ(r.warnings[0],
              "speed-of-light backstop not applied: the machine's FMA ceiling was not measured");

    // an older report without the fields still loads
    nlohmann::json j = report_to_json(r);
    j["machine"].erase("fma_ceiling");
    j["machine"].erase("backstop_margin");
    j["warnings"] = nlohmann::json::array();
    Result<ScoreReport> loaded = report_from_json(j);
    ASSERT_TRUE(loaded) << loaded.error();
    const ScoreReport& back = *loaded;
    EXPECT_EQ(back.verdict, Verdict::valid);
    EXPECT_EQ(back.warnings, r.warnings);

    // a CPU whose FMA loop is no ceiling
    r = report_with_runs({3.0});
    r.fma_ceiling.not_a_ceiling = "this CPU has AMX tile matrix units";
    r.tasks[0].submission_seconds = {0.001};
    finalize_report(r);
    EXPECT_EQ(r.verdict, Verdict::valid);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_EQ(r.warnings[0],
              "speed-of-light backstop not applied: this CPU has AMX tile matrix units");

    // a refused submission has no runs and needs no such warning
    ScoreReport rejected;
    rejected.complete = true;
    rejected.rejected = {"the submission does not build"};
    finalize_report(rejected);
    EXPECT_TRUE(rejected.warnings.empty());
}

// --- the measurement --------------------------------------------------------------------------

TEST(FmaCeiling, RunsOnEveryUsableCpuAndRecordsWhatItMeasured) {
    const FmaCeiling c = measure_fma_ceiling(1);
#if defined(__x86_64__)
    EXPECT_GT(c.gflops, 0);
    EXPECT_FALSE(c.isa.empty());
    EXPECT_GT(c.trials, 0);
#endif
    // the sandbox does not pin trainers to --threads cores, so neither does the ceiling
    EXPECT_GE(c.threads, 1);
    EXPECT_LE(c.threads, (int)std::max(1u, std::thread::hardware_concurrency()));
    EXPECT_GE(measure_fma_ceiling(c.threads + 1).threads, c.threads + 1);
    EXPECT_LT(c.seconds, 30);  // ~0.2 s per ISA when quiet; generous for a loaded machine
}

// The ceiling must not be below what OpenBLAS reaches. Load lowers the sgemm number (best of
// 20 whole-machine sgemm calls) far more than the ceiling (the sum of each thread's best 0.25 ms
// chunk), so on a loaded machine this only gets easier; 0.75 leaves room for a change of clock
// between the two measurements and still catches a loop that runs well below the machine's
// rate (e.g. half-width vectors: 0.5 of the ceiling on an AVX-512 machine).
TEST(FmaCeiling, IsNotBelowTheSgemmPeak) {
#if defined(__x86_64__)
    const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
    const double ceiling_before = measure_fma_ceiling(threads).gflops;
    const double sgemm = measure_peak_gflops(threads);
    const double ceiling = std::max(ceiling_before, measure_fma_ceiling(threads).gflops);
    EXPECT_GE(ceiling, 0.75 * sgemm) << "FMA ceiling " << ceiling << ", sgemm " << sgemm;
#endif
}

}  // namespace
}  // namespace trainopt
