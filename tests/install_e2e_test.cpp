// The recommended evaluation flow end to end (docs/security.md): trainopt installed into a
// prefix, a workspace made by the installed trainopt, an honest edit, and the installed trainopt
// building and verifying the workspace from the installed pristine tree alone.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;

TEST(InstallEndToEnd, InstalledTrainoptVerifiesAWorkspace) {
    TempDir dir;
    const std::string prefix = dir.path + "/prefix";
    chmod(dir.path.c_str(), 0755);  // traversable, as an install prefix is, for sandboxed runs
    auto install =
        testing::run_command({TRAINOPT_CMAKE, "--install", TRAINOPT_BINARY_DIR, "--prefix", prefix},
                             dir.path + "/install.log");
    ASSERT_EQ(install.exit_code, 0) << install.output;
    const std::string trainopt = prefix + "/bin/trainopt";
    const std::string ws = dir.path + "/ws";
    auto init = testing::run_command({trainopt, "workspace", "init", ws}, dir.path + "/init.log");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    std::string src = testing::read_text(ws + "/kernels/submission.cpp");
    testing::write_text(ws + "/kernels/submission.cpp", "// my edit\n" + src);
    // built by the installed trainopt, not reused from the tests' build cache (the same edit
    // is EndToEnd.VerifyAWorkspace's, and an identical install computes the same key)
    auto v = testing::run_command({trainopt, "verify", ws, "--suite", "test", "--no-build-cache",
                                   "--json", dir.path + "/v.json"},
                                  dir.path + "/verify.log");
    EXPECT_EQ(v.exit_code, 0) << v.output;
    nlohmann::json report = testing::read_json(dir.path + "/v.json");
    EXPECT_EQ(report["verdict"], "VALID");
    EXPECT_EQ(report["suite"], "test");
    EXPECT_EQ(report["submission"]["build"]["from_cache"], false);
}

}  // namespace
}  // namespace trainopt
