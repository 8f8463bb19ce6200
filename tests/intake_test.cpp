// Intake: the allow-list and the refusal of symlinks, binaries, mode changes and escapes,
// for patches, overlays and workspaces.
#include "harness/intake.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text;

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

// Applies a submission onto a fresh scratch copy; returns the problems.
std::vector<std::string> apply_to_scratch(const std::string& path, const TempDir& scratch_root) {
    Result<Submission> sub = classify_submission(path);
    EXPECT_TRUE(sub) << sub.error();
    if (!sub) return {sub.error()};
    const std::string scratch = scratch_root.path + "/src";
    Status copied = copy_pristine_tree(testing::project_root(), scratch);
    EXPECT_TRUE(copied) << copied.error();
    return apply_submission(*sub, testing::project_root(), scratch, SandboxMode::none);
}

// Why check_editable_path refuses the path; "" when it allows it.
std::string refusal(const std::string& path) {
    Status allowed = check_editable_path(path);
    return allowed ? "" : allowed.error();
}

TEST(Intake, EditablePaths) {
    EXPECT_EQ(refusal("kernels/fast.cpp"), "");
    EXPECT_EQ(refusal("baseline/train.cpp"), "");
    EXPECT_NE(refusal("harness/verify.cpp").find("outside the editable surface"),
              std::string::npos);
    EXPECT_NE(refusal("tasks/default/small.toml").find("outside"), std::string::npos);
    EXPECT_NE(refusal("kernels/../harness/x").find("escapes"), std::string::npos);
    EXPECT_NE(refusal("/etc/passwd").find("absolute"), std::string::npos);
    EXPECT_NE(refusal("CMakeLists.txt").find("outside"), std::string::npos);
}

TEST(Intake, ShippedCheatPatchesAreRefusedWithReasons) {
    const std::string cheats = testing::project_root() + "/tests/cheats/";
    struct Case {
        const char* file;
        const char* reason;
    } cases[] = {{"touch_harness.patch", "harness/verify.cpp: outside the editable surface"},
                 {"symlink.patch", "symlinks are not accepted"},
                 {"binary.patch", "binary patches are not accepted"},
                 {"mode_change.patch", "mode changes are not accepted"},
                 {"path_escape.patch", "escapes the tree"}};
    for (const Case& c : cases) {
        TempDir scratch;
        std::string problems = joined(apply_to_scratch(cheats + c.file, scratch));
        EXPECT_NE(problems.find(c.reason), std::string::npos) << c.file << ": " << problems;
    }
}

// The cheats that must be caught later (build, audit, runs) have to get through intake first;
// when baseline/train.cpp or kernels/submission.cpp change, run tests/cheats/regenerate.py.
TEST(Intake, CheatPatchesForLaterStagesStillApply) {
    for (const char* name : {"cache_results", "copy_reference", "early_exit", "skip_steps",
                             "fewer_layers", "background_process", "fake_clock", "low_precision"}) {
        TempDir scratch;
        std::string path = testing::project_root() + "/tests/cheats/" + name + ".patch";
        EXPECT_EQ(joined(apply_to_scratch(path, scratch)), "")
            << name << ".patch no longer applies: run tests/cheats/regenerate.py";
    }
}

TEST(Intake, AValidPatchApplies) {
    TempDir dir, scratch;
    write_text(dir.path + "/ok.patch",
               "diff --git a/kernels/submission.cpp b/kernels/submission.cpp\n"
               "--- a/kernels/submission.cpp\n+++ b/kernels/submission.cpp\n"
               "@@ -1,1 +1,2 @@\n+// tuned\n // The submission hook. A submission that wants to "
               "replace individual kernels overwrites entries\n");
    EXPECT_EQ(joined(apply_to_scratch(dir.path + "/ok.patch", scratch)), "");
    EXPECT_NE(testing::read_text(scratch.path + "/src/kernels/submission.cpp").find("// tuned"),
              std::string::npos);
}

TEST(Intake, APatchThatDoesNotApplyIsRefused) {
    TempDir dir, scratch, scratch2;
    write_text(dir.path + "/bad.patch",
               "--- a/kernels/submission.cpp\n+++ b/kernels/submission.cpp\n@@ -1,1 +1,1 @@\n-no "
               "such line\n+x\n");
    EXPECT_NE(joined(apply_to_scratch(dir.path + "/bad.patch", scratch)).find("does not apply"),
              std::string::npos);
    write_text(dir.path + "/empty.patch", "hello\n");
    EXPECT_NE(joined(apply_to_scratch(dir.path + "/empty.patch", scratch2)).find("names no files"),
              std::string::npos);
}

TEST(Intake, OverlayRules) {
    {
        TempDir overlay, scratch;
        write_text(overlay.path + "/kernels/extra.cpp", "int x;\n");
        EXPECT_EQ(joined(apply_to_scratch(overlay.path, scratch)), "");
        EXPECT_TRUE(fs::exists(scratch.path + "/src/kernels/extra.cpp"));
    }
    {
        TempDir overlay, scratch;
        write_text(overlay.path + "/tasks/default/small.toml", "x");
        EXPECT_NE(
            joined(apply_to_scratch(overlay.path, scratch)).find("outside the editable surface"),
            std::string::npos);
    }
    {
        TempDir overlay, scratch;
        fs::create_directories(overlay.path + "/kernels");
        fs::create_symlink("/etc/passwd", overlay.path + "/kernels/link.h");
        EXPECT_NE(joined(apply_to_scratch(overlay.path, scratch)).find("symlinks are not accepted"),
                  std::string::npos);
    }
    {
        TempDir overlay, scratch;
        write_text(overlay.path + "/kernels/run.sh", "#!/bin/sh\n");
        chmod((overlay.path + "/kernels/run.sh").c_str(), 0755);
        EXPECT_NE(joined(apply_to_scratch(overlay.path, scratch)).find("executable"),
                  std::string::npos);
    }
    {
        TempDir overlay, scratch;
        std::string bin("abc\0def", 7);
        write_text(overlay.path + "/kernels/blob.o", bin);
        EXPECT_NE(joined(apply_to_scratch(overlay.path, scratch)).find("binary"),
                  std::string::npos);
    }
}

TEST(Intake, WorkspaceRules) {
    TempDir ws, scratch, scratch2;
    Status copied = copy_pristine_tree(testing::project_root(), ws.path);
    ASSERT_TRUE(copied) << copied.error();
    write_text(ws.path + "/" + kWorkspaceMarker, "x");
    fs::create_directories(ws.path + "/build/junk");  // build output is ignored
    write_text(ws.path + "/kernels/submission.cpp", "// changed\n");
    auto problems = apply_to_scratch(ws.path, scratch);
    EXPECT_EQ(joined(problems), "");
    EXPECT_EQ(testing::read_text(scratch.path + "/src/kernels/submission.cpp"), "// changed\n");

    write_text(ws.path + "/tasks/default/small.toml", "[task]\nname = \"easy\"\n");
    EXPECT_NE(joined(apply_to_scratch(ws.path, scratch2))
                  .find("tasks/default/small.toml: changed, but outside"),
              std::string::npos);
}

TEST(Intake, MissingSubmission) {
    Result<Submission> sub = classify_submission("/nonexistent/sub");
    ASSERT_FALSE(sub);
    EXPECT_NE(sub.error().find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace trainopt

namespace trainopt {
namespace {

// A header-only change (no ---/+++ lines) names its file only in the diff --git line.
TEST(Intake, HeaderOnlyDiffOutsideTheSurfaceIsRefused) {
    TempDir dir, scratch;
    const std::string patch = dir.path + "/notes.patch";
    write_text(patch, "diff --git a/NOTES b/NOTES\nnew file mode 100644\nindex 0000000..e69de29\n");
    std::vector<std::string> problems = apply_to_scratch(patch, scratch);
    EXPECT_NE(joined(problems).find("NOTES: outside the editable surface"), std::string::npos)
        << joined(problems);
    EXPECT_FALSE(fs::exists(scratch.path + "/src/NOTES"));
}

// git runs with no configuration of its own: a repository, a global config and attributes a
// local user planted above the scratch tree do not run their filters.
TEST(Intake, PlantedGitConfigurationIsNotRead) {
    TempDir dir, scratch;
    const std::string marker = dir.path + "/filter-ran";
    write_text(dir.path + "/filter.sh", "#!/bin/sh\ntouch " + marker + "\ncat\n");
    chmod((dir.path + "/filter.sh").c_str(), 0755);
    write_text(dir.path + "/attributes", "* filter=planted\n");
    const std::string config = "[core]\n\tattributesFile = " + dir.path +
                               "/attributes\n[filter \"planted\"]\n\tsmudge = " + dir.path +
                               "/filter.sh\n\tclean = " + dir.path + "/filter.sh\n";
    write_text(scratch.path + "/.gitconfig", config);   // $HOME if git took the scratch's parent
    write_text(scratch.path + "/.git/config", config);  // a repository above the tree
    write_text(scratch.path + "/.git/HEAD", "ref: refs/heads/main\n");
    fs::create_directories(scratch.path + "/.git/objects");
    fs::create_directories(scratch.path + "/.git/refs");
    const std::string patch = dir.path + "/ok.patch";
    write_text(patch,
               "diff --git a/kernels/planted.txt b/kernels/planted.txt\nnew file mode 100644\n"
               "--- /dev/null\n+++ b/kernels/planted.txt\n@@ -0,0 +1 @@\n+hello\n");
    std::vector<std::string> problems = apply_to_scratch(patch, scratch);
    EXPECT_TRUE(problems.empty()) << joined(problems);
    EXPECT_FALSE(fs::exists(marker)) << "git ran a planted filter";
}

}  // namespace
}  // namespace trainopt
