// trainopt profile end to end on the tiny test suite: the per-kernel table beside the
// baseline's is printed whether or not perf can sample here (absent, refused by
// perf_event_paranoid, or not run at all), and bad command lines are usage errors.
#include <gtest/gtest.h>

#include "harness/profile.h"
#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;

void expect_kernel_table(const std::string& output) {
    EXPECT_NE(output.find("trainopt profile: tiny (suite test), not a score"), std::string::npos)
        << output;
    EXPECT_NE(output.find("baseline ms/step"), std::string::npos);
    EXPECT_NE(output.find("submission ms/step"), std::string::npos);
    EXPECT_NE(output.find("\n  matmul "), std::string::npos) << output;
    EXPECT_NE(output.find("whole run (harness-timed)"), std::string::npos);
    EXPECT_NE(output.find("self-reported and advisory"), std::string::npos);
    EXPECT_NE(output.find("Top functions of the submission"), std::string::npos);
}

TEST(ProfileEndToEnd, ExampleOnTheTestSuitePrintsKernelsAndSamplesWhenPerfCan) {
    TempDir dir;
    auto r = testing::run_cli({"profile", testing::project_root() + "/submissions/blas-tbb",
                               "--suite", "test", "--task", "tiny", "--seed", "5"},
                              dir.path + "/log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_kernel_table(r.output);
    // sampled (a row in percent, the trainer named), or a line saying why not
    const bool sampled = r.output.find("samples  in") != std::string::npos;
    const bool explained = r.output.find("not sampled: ") != std::string::npos;
    EXPECT_TRUE(sampled != explained) << r.output;
    if (const std::string why = perf_unavailable_reason(); !why.empty()) {
        EXPECT_NE(r.output.find(why), std::string::npos) << r.output;
    }
}

TEST(ProfileEndToEnd, WithoutSamplingOrSandboxTheTableStillPrints) {
    TempDir dir;
    auto r = testing::run_cli({"profile", testing::project_root() + "/submissions/blas-tbb",
                               "--suite", "test", "--task", "tiny", "--no-sample"},
                              dir.path + "/a");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_kernel_table(r.output);
    EXPECT_NE(r.output.find("not sampled (--no-sample)"), std::string::npos) << r.output;

    r = testing::run_cli(
        {"profile", "baseline", "--suite", "test", "--task", "tiny", "--no-sandbox"},
        dir.path + "/b");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_kernel_table(r.output);
    EXPECT_NE(r.output.find("UNSANDBOXED"), std::string::npos);
    EXPECT_NE(r.output.find("not sampled: sampling runs perf in the bubblewrap sandbox only"),
              std::string::npos)
        << r.output;
}

TEST(ProfileEndToEnd, BadCommandLinesAreRefused) {
    TempDir dir;
    auto r = testing::run_cli({"profile", "baseline", "--suite", "test"}, dir.path + "/a");
    EXPECT_EQ(r.exit_code, 2) << r.output;  // no --task
    EXPECT_NE(r.output.find("--task"), std::string::npos) << r.output;
    r = testing::run_cli({"profile", "baseline", "--suite", "test", "--task", "tiny", "--top", "0"},
                         dir.path + "/b");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = testing::run_cli({"profile", "--task", "tiny"}, dir.path + "/c");  // no submission
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = testing::run_cli({"profile", "baseline", "--suite", "test", "--task", "no-such-task"},
                         dir.path + "/d");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("no such task in suite test"), std::string::npos) << r.output;
    r = testing::run_cli({"profile", "baseline", "--suite", "generated:3:1", "--task", "gen-0"},
                         dir.path + "/e");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("not generated:3:1"), std::string::npos) << r.output;
}

// score --references without the reference submissions says where it looked, before any run.
TEST(ProfileEndToEnd, ReferencesWithoutTheSubmissionsIsAClearError) {
    TempDir dir;
    auto r = testing::run_cli(
        {"score", "baseline", "--suite", "test", "--references-dir", dir.path}, dir.path + "/log");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("--references: no reference submission " + dir.path + "/blas-tbb"),
              std::string::npos)
        << r.output;
    r = testing::run_cli(
        {"score", "baseline", "--suite", "test", "--references-dir", dir.path + "/absent"},
        dir.path + "/log2");
    EXPECT_EQ(r.exit_code, 2) << r.output;  // CLI11: not an existing directory
}

}  // namespace
}  // namespace trainopt
