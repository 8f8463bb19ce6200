// Approximated math (docs/security.md, "Approximated math"; measurements in docs/tolerances.md):
// a cubic polynomial exp in the vocabulary softmax (relative error 1.0e-4, about 1300 ulp) gets no
// credit (plain, or exact at the row maximum), while fp32 reorderings stay VALID. The tiny test
// suite cannot see it (it has the default tolerances, and cubic exps move its loss by 2e-5 to
// 3e-5); the cross-entropy verification task can: tests/cheats/math/xent.toml, the test-sized
// version of the one proposed for the default suite (tests/cheats/math/default/xent.toml),
// checks the loss at 1e-5.
#include <gtest/gtest.h>

#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;

struct ProbeRun {
    int exit_code;
    nlohmann::json report;
    std::string reasons;
    std::string log;
};

ProbeRun score_on_probe(const std::string& submission, const std::string& command = "score") {
    TempDir dir;
    const std::string json = dir.path + "/report.json";
    std::vector<std::string> args = {command,   submission,
                                     "--suite", testing::project_root() + "/tests/cheats/math",
                                     "--json",  json};
    if (command == "score") {
        args.push_back("--reps");
        args.push_back("2");
    }
    testing::CliResult r = testing::run_cli(args, dir.path + "/log");
    nlohmann::json report = testing::read_json(json);
    return {r.exit_code, report, testing::all_reasons(report), r.output};
}

void expect_invalid_loss(const ProbeRun& run) {
    EXPECT_EQ(run.exit_code, 3) << run.log;
    ASSERT_FALSE(run.report.is_discarded()) << run.log;
    EXPECT_EQ(run.report["verdict"], "INVALID") << run.reasons;
    EXPECT_EQ(run.report["score"]["arithmetic_mean"], 0.0);
    EXPECT_NE(run.reasons.find("loss trajectory differs from the reference"), std::string::npos)
        << "reasons were:\n"
        << run.reasons;
    EXPECT_NE(run.reasons.find("> tolerance 1e-05"), std::string::npos) << run.reasons;
    // the first repetition fails already: 4e-5 or more of loss deviation, 4x the tolerance
    ASSERT_EQ(run.report["tasks"].size(), 1u);
    EXPECT_GE(run.report["tasks"][0]["max_loss_diff"].get<double>(), 2e-5) << run.reasons;
}

TEST(CheatsMath, CubicExpInTheVocabularySoftmaxIsInvalid) {
    expect_invalid_loss(
        score_on_probe(testing::project_root() + "/tests/cheats/approx_exp_vocab.patch"));
}

TEST(CheatsMath, CubicExpExactAtTheRowMaximumIsInvalidToo) {
    // exp(0) = 1 exactly, so the target at the row maximum is unbiased; the other words' exps
    // still are (mean relative error 4e-5), and the loss still moves by 4e-5 or more.
    expect_invalid_loss(score_on_probe(testing::project_root() +
                                       "/tests/cheats/approx_exp_vocab_exact_zero.patch"));
}

TEST(CheatsMath, Fp32ReorderingStaysValidOnTheProbe) {
    // OpenBLAS + oneTBB: reordered sums, libm's expf; about 1e-6 of loss deviation (ulps).
    ProbeRun run = score_on_probe(testing::project_root() + "/submissions/blas-tbb");
    EXPECT_EQ(run.exit_code, 0) << run.log;
    ASSERT_FALSE(run.report.is_discarded()) << run.log;
    EXPECT_EQ(run.report["verdict"], "VALID") << run.reasons;
    ASSERT_EQ(run.report["tasks"].size(), 1u);
    EXPECT_LE(run.report["tasks"][0]["max_loss_diff"].get<double>(), 5e-6);
}

}  // namespace
}  // namespace trainopt
