// The evaluated agent's fast loop through the CLI: `verify --seed S` keeps the baseline's
// reference outputs in the baseline cache (harness/baseline_cache.h), so a second verify with the
// same seed does not run the baseline (the log says so, the report marks the task and has no
// baseline time and no speedup), and a damaged entry is replaced by a fresh run; `trainopt
// check` runs N steps of one task against the (cached) reference: PASS for an honest workspace,
// FAIL with the first divergent step for a cheat, exit 2 for what the suite does not have. Every
// test passes its own --baseline-cache; the trainers come from the tests' shared build cache.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::cache_entries;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

struct Verified {
    testing::CliResult cli;
    nlohmann::json report;
    bool reused_baseline() const {
        return cli.output.find("reused its reference outputs") != std::string::npos;
    }
};

// trainopt verify SUBMISSION on the test suite with `args` added, its JSON report read back.
Verified verify(const std::string& submission, const std::string& work,
                const std::vector<std::string>& args) {
    static int runs = 0;
    const std::string tag = std::to_string(++runs);
    std::vector<std::string> argv = {"verify", submission, "--suite",
                                     "test",   "--json",   work + "/r" + tag + ".json"};
    argv.insert(argv.end(), args.begin(), args.end());
    Verified v;
    v.cli = testing::run_cli(argv, work + "/log" + tag);
    v.report = testing::read_json(work + "/r" + tag + ".json");
    return v;
}

TEST(BaselineCacheEndToEnd, ASecondVerifyWithTheSameSeedDoesNotRunTheBaseline) {
    TempDir dir;
    const std::string cache = dir.path + "/baselines";
    const std::vector<std::string> seeded = {"--seed", "7", "--baseline-cache", cache};
    Verified first = verify("baseline", dir.path, seeded);
    ASSERT_EQ(first.cli.exit_code, 0) << first.cli.output;
    EXPECT_FALSE(first.reused_baseline()) << first.cli.output;
    EXPECT_NE(first.cli.output.find("baseline: reference outputs of seed"), std::string::npos)
        << first.cli.output;
    EXPECT_EQ(first.report["tasks"][0]["baseline_cached"], false);
    EXPECT_EQ(first.report["tasks"][0]["baseline_seconds"].size(), 1u);
    ASSERT_EQ(cache_entries(cache).size(), 1u);

    Verified second = verify("baseline", dir.path, seeded);
    ASSERT_EQ(second.cli.exit_code, 0) << second.cli.output;
    EXPECT_EQ(second.report["verdict"], "VALID");
    EXPECT_TRUE(second.reused_baseline()) << second.cli.output;
    EXPECT_EQ(second.report["tasks"][0]["baseline_cached"], true);
    EXPECT_TRUE(second.report["tasks"][0]["baseline_seconds"].empty());
    EXPECT_EQ(second.report["tasks"][0]["seeds"], first.report["tasks"][0]["seeds"]);
    // the same reference: the same deviation (none) and the same held-out loss
    EXPECT_EQ(second.report["tasks"][0]["baseline_heldout_loss"],
              first.report["tasks"][0]["baseline_heldout_loss"]);
    // no speedup is claimed against a reference nothing was timed against
    EXPECT_NE(second.cli.output.find("No speedup: the baseline's reference outputs were reused"),
              std::string::npos)
        << second.cli.output;
    EXPECT_EQ(cache_entries(cache).size(), 1u);

    // another seed, no seed (a fresh one each time) and --no-baseline-cache all run the baseline
    Verified other_seed = verify("baseline", dir.path, {"--seed", "8", "--baseline-cache", cache});
    EXPECT_FALSE(other_seed.reused_baseline()) << other_seed.cli.output;
    EXPECT_EQ(cache_entries(cache).size(), 2u);
    Verified fresh = verify("baseline", dir.path, {"--baseline-cache", cache});
    EXPECT_FALSE(fresh.reused_baseline()) << fresh.cli.output;
    EXPECT_EQ(fresh.report["tasks"][0]["baseline_seconds"].size(), 1u);
    EXPECT_EQ(cache_entries(cache).size(), 2u) << "a fresh seed is not worth keeping";
    Verified disabled = verify("baseline", dir.path,
                               {"--seed", "7", "--baseline-cache", cache, "--no-baseline-cache"});
    EXPECT_FALSE(disabled.reused_baseline()) << disabled.cli.output;
    EXPECT_EQ(disabled.report["tasks"][0]["baseline_cached"], false);
}

TEST(BaselineCacheEndToEnd, ADamagedEntryIsReplacedByAFreshRun) {
    TempDir dir;
    const std::string cache = dir.path + "/baselines";
    const std::vector<std::string> seeded = {"--seed", "9", "--baseline-cache", cache};
    ASSERT_EQ(verify("baseline", dir.path, seeded).cli.exit_code, 0);
    ASSERT_EQ(cache_entries(cache).size(), 1u);
    const std::string reference = cache + "/" + cache_entries(cache)[0] + "/reference.bin";
    std::string bytes = read_text(reference);
    bytes[bytes.size() / 2] ^= 1;
    write_text(reference, bytes);

    Verified again = verify("baseline", dir.path, seeded);
    ASSERT_EQ(again.cli.exit_code, 0) << again.cli.output;
    EXPECT_NE(again.cli.output.find("was not trusted and was removed"), std::string::npos)
        << again.cli.output;
    EXPECT_FALSE(again.reused_baseline());
    EXPECT_EQ(again.report["tasks"][0]["baseline_cached"], false);
    Verified third = verify("baseline", dir.path, seeded);
    EXPECT_TRUE(third.reused_baseline()) << third.cli.output;
}

// trainopt check SUBMISSION on the test suite with `args` added.
testing::CliResult check(const std::string& submission, const std::string& work,
                         const std::vector<std::string>& args) {
    static int runs = 0;
    std::vector<std::string> argv = {"check", submission, "--suite", "test"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_cli(argv, work + "/check" + std::to_string(++runs));
}

// What check printed after its log lines: the verdict and the rest.
std::string verdict_text(const testing::CliResult& r) {
    const size_t at = r.output.find("trainopt check: ");
    return at == std::string::npos ? "" : r.output.substr(at);
}

TEST(CheckEndToEnd, AnHonestWorkspacePassesAndTheSecondCheckReusesTheReference) {
    TempDir dir;
    const std::string ws = dir.path + "/ws";
    ASSERT_EQ(testing::run_cli({"workspace", "init", ws}, dir.path + "/init").exit_code, 0);
    const std::string src = read_text(ws + "/kernels/submission.cpp");
    write_text(ws + "/kernels/submission.cpp", "// an honest edit\n" + src);
    const std::vector<std::string> args = {"--steps", "12", "--baseline-cache",
                                           dir.path + "/baselines"};
    testing::CliResult first = check(ws, dir.path, args);
    ASSERT_EQ(first.exit_code, 0) << first.output;
    const std::string text = verdict_text(first);
    EXPECT_EQ(text.rfind("trainopt check: PASS", 0), 0u) << first.output;
    EXPECT_NE(text.find("Not the official verification"), std::string::npos) << text;
    EXPECT_NE(text.find("steps 0-11"), std::string::npos) << text;
    EXPECT_NE(text.find("computed now"), std::string::npos) << text;
    EXPECT_NE(text.find("\n    11  "), std::string::npos) << "every step is shown: " << text;
    EXPECT_NE(text.find("Final weights per tensor"), std::string::npos) << text;
    EXPECT_EQ(text.find("speedup"), std::string::npos) << "never a score: " << text;
    EXPECT_EQ(text.find(" s "), std::string::npos) << "never a time: " << text;

    testing::CliResult second = check(ws, dir.path, args);
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(verdict_text(second).find("from the baseline cache"), std::string::npos)
        << second.output;
    EXPECT_NE(second.output.find("reused its reference outputs"), std::string::npos)
        << second.output;
    EXPECT_NE(second.output.find("trainer reused from the build cache"), std::string::npos)
        << second.output;
}

TEST(CheckEndToEnd, ACheatFailsAtItsFirstDivergentStep) {
    TempDir dir;
    // every other optimizer update skipped: step 1's is the first, so step 2's loss departs
    testing::CliResult r = check(testing::project_root() + "/tests/cheats/skip_steps.patch",
                                 dir.path, {"--baseline-cache", dir.path + "/baselines"});
    ASSERT_EQ(r.exit_code, 3) << r.output;
    const std::string text = verdict_text(r);
    EXPECT_EQ(text.rfind("trainopt check: FAIL", 0), 0u) << r.output;
    EXPECT_NE(text.find("first step over it: 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("first over the tolerance"), std::string::npos) << text;
    EXPECT_NE(text.find("FAIL: loss trajectory differs from the reference"), std::string::npos)
        << text;
    EXPECT_NE(text.find("steps 0-19"), std::string::npos) << "20 steps by default: " << text;
}

TEST(CheckEndToEnd, WhatTheSuiteDoesNotHaveIsAUsageError) {
    TempDir dir;
    testing::CliResult unknown = check("baseline", dir.path, {"--task", "nope"});
    EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
    EXPECT_NE(unknown.output.find("no task 'nope'; its tasks: tiny"), std::string::npos)
        << unknown.output;
    testing::CliResult too_long = check("baseline", dir.path, {"--steps", "151"});
    EXPECT_EQ(too_long.exit_code, 2) << too_long.output;
    EXPECT_NE(too_long.output.find("trains 150 steps"), std::string::npos) << too_long.output;
    testing::CliResult zero = check("baseline", dir.path, {"--steps", "0"});
    EXPECT_EQ(zero.exit_code, 2) << zero.output;
}

}  // namespace
}  // namespace trainopt
