// Every known cheat class, as a submission that must get no credit, with a clear reason.
// All run on the tiny test suite. See docs/security.md for the list and the defences.
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;

struct CheatRun {
    int exit_code;
    nlohmann::json report;
    std::string reasons;
    std::string log;
};

CheatRun score_cheat(const std::string& cheat, std::vector<std::string> extra = {}) {
    TempDir dir;
    const std::string json = dir.path + "/report.json";
    std::vector<std::string> args = {"score",   testing::project_root() + "/tests/cheats/" + cheat,
                                     "--suite", "test",
                                     "--reps",  "2",
                                     "--json",  json};
    args.insert(args.end(), extra.begin(), extra.end());
    testing::CliResult r = testing::run_cli(args, dir.path + "/log");
    nlohmann::json report = testing::read_json(json);
    return {r.exit_code, report, testing::all_reasons(report), r.output};
}

void expect_no_credit(const CheatRun& run, const std::string& verdict, const std::string& reason) {
    EXPECT_EQ(run.exit_code, 3) << run.log;
    ASSERT_FALSE(run.report.is_discarded()) << run.log;
    EXPECT_EQ(run.report["verdict"], verdict) << run.reasons;
    EXPECT_EQ(run.report["score"]["arithmetic_mean"], 0.0);
    EXPECT_NE(run.reasons.find(reason), std::string::npos) << "reasons were:\n" << run.reasons;
}

TEST(Cheats, PatchTouchingTheHarnessIsRejected) {
    expect_no_credit(score_cheat("touch_harness.patch"), "REJECTED",
                     "harness/verify.cpp: outside the editable surface");
}

TEST(Cheats, SymlinkInAPatchIsRejected) {
    expect_no_credit(score_cheat("symlink.patch"), "REJECTED", "symlinks are not accepted");
}

TEST(Cheats, FakingTheClockIsRejected) {
    expect_no_credit(score_cheat("fake_clock.patch"), "REJECTED",
                     "defines its own clock_gettime(): replacing time functions");
}

TEST(Cheats, HidingSymbolsFromTheAuditIsRejected) {
    // the same interposition, with the ELF section header offset damaged after linking: the
    // trainer still runs, nm cannot read it, and what cannot be audited is refused
    expect_no_credit(score_cheat("unreadable_symbols.patch"), "REJECTED",
                     "nm cannot read the trainer's symbol table");
}

TEST(Cheats, ExitingEarlyWithSuccessIsInvalid) {
    expect_no_credit(score_cheat("early_exit.patch"), "INVALID",
                     "held-out loss of the final checkpoint, recomputed by the harness");
}

TEST(Cheats, SkippingStepsIsInvalid) {
    expect_no_credit(score_cheat("skip_steps.patch"), "INVALID", "loss trajectory differs");
}

TEST(Cheats, TrainingFewerLayersIsInvalid) {
    expect_no_credit(score_cheat("fewer_layers.patch"), "INVALID", "final weights differ");
}

TEST(Cheats, LowerPrecisionIsInvalid) {
    expect_no_credit(score_cheat("low_precision.patch"), "INVALID", "loss trajectory differs");
}

TEST(Cheats, BackgroundProcessOutlivingTheRunIsInvalid) {
    expect_no_credit(score_cheat("background_process.patch"), "INVALID",
                     "left processes running after it exited");
}

TEST(Cheats, CopyingReferenceOutputsFindsNothingInTheSandbox) {
    // In the sandbox the baseline's outputs do not exist for the trainer; it gives up.
    expect_no_credit(score_cheat("copy_reference.patch"), "INVALID",
                     "no reference outputs found to copy");
}

TEST(Cheats, CopyingReferenceOutputsFindsNothingWithoutTheSandboxEither) {
    if (geteuid() != 0) GTEST_SKIP() << "the unsandboxed fallback separates uids only as root";
    // The baseline's outputs of this score are out of reach (another uid, removed before the
    // submission runs). On a shared machine the cheat may still find some other final.ckpt
    // under a "baseline" folder somewhere readable; that one is not this run's, so it fails
    // verification instead. Either way: no credit.
    const CheatRun run = score_cheat("copy_reference.patch", {"--no-sandbox"});
    const bool found_nothing =
        run.reasons.find("no reference outputs found to copy") != std::string::npos;
    const bool copied_something_else =
        run.reasons.find("final.ckpt") != std::string::npos ||
        run.reasons.find("differs from the reference") != std::string::npos ||
        run.reasons.find("nonce") != std::string::npos;
    EXPECT_TRUE(found_nothing || copied_something_else) << run.reasons;
    expect_no_credit(run, "INVALID", "");
}

TEST(Cheats, CachingResultsBetweenRunsIsDefeatedByFreshSeeds) {
    if (geteuid() != 0) GTEST_SKIP() << "the unsandboxed fallback separates uids only as root";
    // Without the sandbox the cache persists in /tmp: the first repetition fills it, the second
    // replays it, and the fresh seed of the second repetition exposes the replay.
    std::error_code ec;
    std::filesystem::remove_all("/tmp/trainopt-cheat-cache", ec);
    CheatRun run = score_cheat("cache_results.patch", {"--no-sandbox"});
    std::filesystem::remove_all("/tmp/trainopt-cheat-cache", ec);
    expect_no_credit(run, "INVALID", "loss trajectory differs");
    EXPECT_NE(run.reasons.find("held-out loss"), std::string::npos);
}

TEST(Cheats, CachingResultsBetweenRunsIsInvisibleInTheSandbox) {
    // Each sandboxed run gets a fresh /tmp and a read-only root: nothing survives a run, so the
    // cheat trains honestly every time (no cache reaches the host, no replay happens).
    std::error_code ec;
    std::filesystem::remove_all("/tmp/trainopt-cheat-cache", ec);
    CheatRun run = score_cheat("cache_results.patch", {"--require-sandbox"});
    EXPECT_EQ(run.report["verdict"], "VALID") << run.reasons;
    EXPECT_FALSE(std::filesystem::exists("/tmp/trainopt-cheat-cache"));
}

}  // namespace
}  // namespace trainopt
