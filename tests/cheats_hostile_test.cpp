// Hostile runs and builds (docs/security.md, "Hostile outputs and builds"): a trainer whose
// outputs are links, FIFOs, devices, directories or oversized files, which looks for host paths,
// forks without end, eats memory or escapes its pinned cores; and a build that plants links where
// trusted code reads or writes. Each gets no credit with a clear reason, and the harness leaves
// nothing behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::map<std::string, std::string> reasons_by_task(const nlohmann::json& report) {
    std::map<std::string, std::string> out;
    for (const auto& t : report["tasks"]) {
        std::string joined;
        for (const auto& r : t["reasons"]) joined += r.get<std::string>() + "\n";
        out[t["name"].get<std::string>()] = joined;
    }
    return out;
}

bool is_empty_dir(const std::string& path) {
    std::error_code ec;
    return fs::is_directory(path, ec) && fs::is_empty(path, ec);
}

// Scores hostile_outputs.patch on the hostile suite; returns each task's reasons.
std::map<std::string, std::string> score_hostile_suite(const std::string& work,
                                                       const std::string& json,
                                                       const std::string& sandbox_flag) {
    const std::string cheats = testing::project_root() + "/tests/cheats";
    testing::CliResult r =
        testing::run_cli({"score", cheats + "/hostile_outputs.patch", "--suite",
                          cheats + "/hostile", "--reps", "1", "--threads", "1", "--max-memory-mb",
                          "512", "--workdir", work, "--json", json, sandbox_flag},
                         json + ".log");
    EXPECT_EQ(r.exit_code, 3) << r.output;
    nlohmann::json report = testing::read_json(json);
    EXPECT_FALSE(report.is_discarded()) << r.output;
    if (report.is_discarded()) return {};
    EXPECT_EQ(report["verdict"], "INVALID");
    EXPECT_EQ(report["score"]["arithmetic_mean"], 0.0);
    return reasons_by_task(report);
}

void expect_reasons(std::map<std::string, std::string>& reasons, bool sandboxed) {
    std::map<std::string, std::vector<std::string>> expected = {
        {"link-outputs",
         {"losses.csv is a symbolic link", "final.ckpt is a symbolic link",
          "meta.json is a symbolic link"}},
        {"fifo-output", {"final.ckpt is not a regular file"}},
        {"device-output", {"final.ckpt is a symbolic link"}},
        {"dir-output", {"final.ckpt is not a regular file"}},
        {"huge-header", {"final.ckpt is", "more than the"}},
        {"oversize-output", {"losses.csv is", "more than the"}},
        {"fork-bomb", {"fork-bomb: process limit reached"}},
        {"memory-hog", {"memory-hog: memory limit reached"}},
        {"shared-memory-hog",
         {"shared-memory-hog: mmap refused after 0 MiB, memfd_create refused, shmget refused"}},
        {"widen-affinity", {"pinned to 1 cores, widening refused, now 1"}}};
    if (sandboxed) expected["host-paths"] = {"host-paths:", "exe=/sandbox/bin/trainopt-train"};
    for (const auto& [task, needles] : expected) {
        ASSERT_TRUE(reasons.count(task)) << "no result for " << task;
        for (const std::string& needle : needles) {
            EXPECT_NE(reasons[task].find(needle), std::string::npos) << task << ": reasons were:\n"
                                                                     << reasons[task];
        }
    }
}

TEST(HostileRuns, EveryAttackOfTheHostileSuiteIsInvalidWithItsReason) {
    TempDir dir;
    const std::string work = dir.path + "/work";
    fs::create_directories(work);
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::others_exec);  // nobody builds
    std::map<std::string, std::string> reasons =
        score_hostile_suite(work, dir.path + "/report.json", "--require-sandbox");
    expect_reasons(reasons, true);
    // Nothing the run can see names a host path: not the work directory, not the project.
    const std::string& probe = reasons["host-paths"];
    EXPECT_EQ(probe.find(work), std::string::npos) << probe;
    EXPECT_EQ(probe.find(testing::project_root()), std::string::npos) << probe;
    EXPECT_EQ(probe.find("/tmp/"), std::string::npos) << probe;
    EXPECT_TRUE(is_empty_dir(work)) << "the harness left files in " << work;
}

TEST(HostileRuns, TheFallbackWithoutTheSandboxHoldsTheSameLines) {
    if (geteuid() != 0) GTEST_SKIP() << "the unsandboxed fallback separates uids only as root";
    TempDir dir;
    const std::string work = dir.path + "/work";
    fs::create_directories(work);
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::others_exec);
    std::map<std::string, std::string> reasons =
        score_hostile_suite(work, dir.path + "/report.json", "--no-sandbox");
    expect_reasons(reasons, false);
    EXPECT_TRUE(is_empty_dir(work)) << "the harness left files in " << work;
}

struct HostileBuild {
    std::string patch;
    std::string reason;
};

class HostileBuilds : public ::testing::TestWithParam<HostileBuild> {};

// The build leaves a link, a FIFO or a 1.5 GiB sparse file where the trainer belongs, or leaves a
// daemon,, and plants links where trusted code once wrote: the submission is refused, nothing is
// created through the links, and nothing is left behind.
TEST_P(HostileBuilds, AreRefusedWithoutFollowingAnything) {
    TempDir dir;
    const std::string work = dir.path + "/work", json = dir.path + "/report.json";
    fs::create_directories(work);
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::others_exec);  // nobody builds
    std::error_code ec;
    fs::remove("/tmp/trainopt-pwned-by-build", ec);
    testing::CliResult r =
        testing::run_cli({"score", testing::project_root() + "/tests/cheats/" + GetParam().patch,
                          "--suite", "test", "--reps", "1", "--workdir", work, "--json", json},
                         dir.path + "/log");
    EXPECT_EQ(r.exit_code, 3) << r.output;
    nlohmann::json report = testing::read_json(json);
    ASSERT_FALSE(report.is_discarded()) << r.output;
    EXPECT_EQ(report["verdict"], "REJECTED");
    EXPECT_NE(testing::all_reasons(report).find(GetParam().reason), std::string::npos)
        << testing::all_reasons(report);
    EXPECT_FALSE(fs::exists(fs::symlink_status("/tmp/trainopt-pwned-by-build")));
    EXPECT_TRUE(is_empty_dir(work)) << "the harness left files in " << work;
}

INSTANTIATE_TEST_SUITE_P(
    Cheats, HostileBuilds,
    ::testing::Values(HostileBuild{"hostile_build_link.patch", "trainopt-train is a link"},
                      HostileBuild{"hostile_build_fifo.patch", "trainopt-train is a FIFO"},
                      HostileBuild{"hostile_build_huge.patch", "bytes allowed"},
                      HostileBuild{"hostile_build_daemon.patch", "left processes running"}),
    [](const ::testing::TestParamInfo<HostileBuild>& info) {
        return info.param.patch.substr(0, info.param.patch.find('.'));
    });

}  // namespace
}  // namespace trainopt
