// Step-local verification (docs/security.md, "Chaotic tasks"): on a task checked "local", the
// whole run is only held to a quality band, so a trainer could try to do less work in the timed
// run than when it is verified. The replay in segments, cut at windows picked after the timed run,
// must reproduce the timed run bit for bit, and every window is recomputed with the reference
// kernels from the submission's own state. Suite: tests/cheats/chaotic (the tiny task, checked
// "local", with a quality band wide enough that these cheats reach the replay).
#include <gtest/gtest.h>

#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;

struct LocalRun {
    int exit_code;
    nlohmann::json report;
    std::string reasons;
    std::string log;
};

LocalRun verify_on_chaotic(const std::string& submission,
                           const std::string& suite = "tests/cheats/chaotic") {
    TempDir dir;
    const std::string json = dir.path + "/report.json";
    testing::CliResult r = testing::run_cli(
        {"verify", submission, "--suite", testing::project_root() + "/" + suite, "--json", json},
        dir.path + "/log");
    nlohmann::json report = testing::read_json(json);
    return {r.exit_code, report, testing::all_reasons(report), r.output};
}

void expect_invalid(const LocalRun& run, const std::string& reason) {
    EXPECT_EQ(run.exit_code, 3) << run.log;
    ASSERT_FALSE(run.report.is_discarded()) << run.log;
    EXPECT_EQ(run.report["verdict"], "INVALID") << run.reasons;
    EXPECT_EQ(run.report["score"]["arithmetic_mean"], 0.0);
    EXPECT_NE(run.reasons.find(reason), std::string::npos) << "reasons were:\n" << run.reasons;
}

std::string cheat(const std::string& name) {
    return testing::project_root() + "/tests/cheats/" + name;
}

TEST(CheatsLocal, LessWorkInTheTimedRunThanInSegmentsIsInvalid) {
    // every third update skipped only when the whole run is asked for: its quality stays within
    // the band, but the segments, trained exactly, cannot reproduce the timed run
    expect_invalid(verify_on_chaotic(cheat("replay_aware.patch")),
                   "does not reproduce the timed run");
}

TEST(CheatsLocal, TheSameShortcutInEveryRunFailsItsWindows) {
    // reproducible, so the replay matches; a skipped step of the first window, recomputed with
    // the reference kernels from the state before it, does not
    expect_invalid(verify_on_chaotic(cheat("consistent_skips.patch")),
                   "each step recomputed with the reference kernels from the state");
}

TEST(CheatsLocal, MomentsThatFreezeALayerUnderTheReferenceUpdateAreInvalid) {
    // a layer left untrained, its gradients never computed, and AdamW moments written (m 1e30, v
    // near the fp32 maximum) under which the reference's own update leaves it in place: every
    // window would match; no history of gradients gives such moments
    expect_invalid(verify_on_chaotic(cheat("freezing_moments.patch")),
                   "no history of gradients gives AdamW these moments");
}

TEST(CheatsLocal, PlausibleMomentsThatFreezeALayerAreInvalidToo) {
    // the same with moments AdamW can reach (m 0, v 1e30): the reference's update of the layer
    // vanishes below fp32 resolution, but its moments move and the submission's do not
    expect_invalid(verify_on_chaotic(cheat("plausible_freezing_moments.patch")),
                   "the state after it differs");
}

TEST(CheatsLocal, ASegmentThatIgnoresTheStateItIsGivenIsInvalid) {
    // every third update skipped, except in one-step segments (the windows' checked steps);
    // the segment after a window recomputes the timed trajectory from the seed instead of
    // continuing from the checked step's state, so its losses match the timed run's. With 20
    // windows of one step, one lands on a skipped step unless all miss (2/3)^20 = 3e-4. The
    // segment after it is caught continuing from elsewhere; when the next step is a window too
    // (about one run in eight), that one-step segment cannot reproduce the timed run instead
    const LocalRun run =
        verify_on_chaotic(cheat("ignores_given_state.patch"), "tests/cheats/chaotic-steps");
    EXPECT_EQ(run.exit_code, 3) << run.log;
    EXPECT_EQ(run.report["verdict"], "INVALID") << run.reasons;
    const bool continued_elsewhere =
        run.reasons.find("does not continue from the state it was given") != std::string::npos;
    const bool not_reproduced =
        run.reasons.find("does not reproduce the timed run") != std::string::npos;
    EXPECT_TRUE(continued_elsewhere || not_reproduced) << "reasons were:\n" << run.reasons;
}

TEST(CheatsLocal, HandingTheWindowsAStateThatDoesNotTrainIsInvalid) {
    // the all-zero model is a fixed point of AdamW: every window's step from it matches the
    // reference exactly, the losses are its constant ln V in every run, and only the final
    // weights (half the training) pass the quality band. The reference's AdamW step from
    // such a state is zero
    expect_invalid(verify_on_chaotic(cheat("zero_fixed_point.patch")), "does not train");
}

TEST(CheatsLocal, ATrainerThatIsNotBitReproducibleIsInvalid) {
    expect_invalid(verify_on_chaotic(cheat("not_reproducible.patch")),
                   "a trainer must be bit-reproducible");
}

TEST(CheatsLocal, TheExampleSubmissionPassesEveryWindow) {
    LocalRun run = verify_on_chaotic(testing::project_root() + "/submissions/blas-tbb");
    EXPECT_EQ(run.exit_code, 0) << run.log;
    ASSERT_FALSE(run.report.is_discarded()) << run.log;
    EXPECT_EQ(run.report["verdict"], "VALID") << run.reasons;
    ASSERT_EQ(run.report["tasks"].size(), 1u);
    const nlohmann::json& task = run.report["tasks"][0];
    EXPECT_EQ(task["check"], "local");
    EXPECT_EQ(task["windows_checked"], 4);
    EXPECT_GT(task["max_window_state_rel"].get<double>(), 0.0);  // reordered, not bit-identical
}

}  // namespace
}  // namespace trainopt
