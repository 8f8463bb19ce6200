// Incremental builds through the CLI (harness/incremental.h): a second check after a one-file
// edit compiles that file alone, from the workspace's compile cache, and the edit takes effect;
// a tampered state (a link, another owner, open permissions) is discarded, saying why, and the
// trainer compiled from nothing; links a hostile build plants in its compile cache are kept as
// links and never followed, and a cache deeper than ccache's is not saved; --no-incremental
// builds from scratch; `score` never builds
// incrementally nor reuses an incremental build. The tests assert on the counts the build
// reports ("compiled N of M files"), never on times. Each test has its own build cache,
// baseline cache and incremental directory. Needs bubblewrap and ccache (skipped otherwise).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <regex>

#include "harness/incremental.h"
#include "harness/sandbox.h"
#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

// Skips the test unless an incremental build can be done here.
#define REQUIRE_INCREMENTAL()                                                   \
    do {                                                                        \
        const std::string why = incremental_unavailable(detect_sandbox_mode()); \
        if (!why.empty()) GTEST_SKIP() << "no incremental build here: " << why; \
    } while (0)

// The caches of one test.
std::vector<std::string> cache_args(const std::string& dir) {
    return {"--build-cache",    dir + "/builds",     "--baseline-cache",
            dir + "/baselines", "--incremental-dir", dir + "/incremental"};
}

// trainopt COMMAND SUBMISSION on the test suite with `args` added.
testing::CliResult run(const std::string& command, const std::string& submission,
                       const std::string& dir, const std::vector<std::string>& args) {
    static int runs = 0;
    std::vector<std::string> argv = {command, submission, "--suite", "test"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_cli(argv, dir + "/log" + std::to_string(++runs));
}

testing::CliResult check(const std::string& submission, const std::string& dir,
                         std::vector<std::string> args = {}) {
    const std::vector<std::string> caches = cache_args(dir);
    args.insert(args.end(), caches.begin(), caches.end());
    return run("check", submission, dir, args);
}

// The counts of "compiled N of M files" in a log: {N, M}; {-1, -1} when absent.
std::pair<int, int> compiled(const std::string& log) {
    std::smatch m;
    static const std::regex counts("compiled ([0-9]+) of ([0-9]+) files");
    if (!std::regex_search(log, m, counts)) return {-1, -1};
    return {std::stoi(m[1]), std::stoi(m[2])};
}

bool built_incrementally(const std::string& log) {
    return log.find("compiling the submission's trainer incrementally") != std::string::npos;
}

// An overlay whose trainer builds in seconds from three files and only prints `line` (the check
// then fails with the line in its reason): cheap builds for the tests of the state itself.
std::string fast_trainer(const std::string& dir, const std::string& line) {
    write_text(dir + "/baseline/CMakeLists.txt",
               "add_executable(trainopt-train main.cpp one.cpp two.cpp)\n");
    write_text(dir + "/baseline/main.cpp",
               "#include <cstdio>\nint one();\nint two();\n"
               "int main() { std::puts(\"" +
                   line + "\"); return one() + two(); }\n");
    write_text(dir + "/baseline/one.cpp", "int one() { return 0; }\n");
    write_text(dir + "/baseline/two.cpp", "int two() { return 1; }\n");
    return dir;
}

// The one state directory under `incremental`, or "" when there is not exactly one.
std::string only_state(const std::string& incremental) {
    std::vector<std::string> states;
    for (const fs::directory_entry& e : fs::directory_iterator(incremental)) {
        if (e.path().filename().string().size() == 64) states.push_back(e.path().string());
    }
    return states.size() == 1 ? states[0] : "";
}

TEST(IncrementalEndToEnd, AOneKernelEditCompilesOneFileAndTakesEffect) {
    REQUIRE_INCREMENTAL();
    TempDir dir;
    const std::string ws = dir.path + "/ws";
    ASSERT_EQ(testing::run_cli({"workspace", "init", ws}, dir.path + "/init").exit_code, 0);
    const std::string kernel = ws + "/kernels/submission.cpp";
    write_text(kernel, "// an honest edit\n" + read_text(kernel));
    testing::CliResult first = check(ws, dir.path, {"--steps", "4"});
    ASSERT_EQ(first.exit_code, 0) << first.output;
    EXPECT_TRUE(built_incrementally(first.output)) << first.output;
    const auto [first_compiled, files] = compiled(first.output);
    EXPECT_GT(files, 2) << first.output;
    EXPECT_EQ(first_compiled, files) << "nothing to reuse yet: " << first.output;

    // the encoder's first output nudged: the loss departs at step 0
    write_text(kernel,
               "#include \"kernels/kernels.h\"\n"
               "namespace trainopt {\n"
               "namespace {\n"
               "decltype(KernelTable::encoder_forward) reference_encoder = nullptr;\n"
               "void nudged_encoder(float* out, const int* inp, const float* wte, const float* "
               "wpe, int B, int T, int C) {\n"
               "    reference_encoder(out, inp, wte, wpe, B, T, C);\n"
               "    out[0] += 0.5f;\n"
               "}\n"
               "}  // namespace\n"
               "void apply_submission_kernels(KernelTable& table) {\n"
               "    reference_encoder = table.encoder_forward;\n"
               "    table.encoder_forward = nudged_encoder;\n"
               "}\n"
               "}  // namespace trainopt\n");
    testing::CliResult second = check(ws, dir.path, {"--steps", "4"});
    ASSERT_EQ(second.exit_code, 3) << "the edit took effect: " << second.output;
    EXPECT_NE(second.output.find("trainopt check: FAIL"), std::string::npos) << second.output;
    EXPECT_EQ(compiled(second.output), std::make_pair(1, files))
        << "only the edited file compiled: " << second.output;
    EXPECT_NE(second.output.find("trainer built incrementally"), std::string::npos)
        << second.output;
}

TEST(IncrementalEndToEnd, ATamperedStateIsDiscardedAndEverythingCompiled) {
    REQUIRE_INCREMENTAL();
    if (geteuid() != 0) GTEST_SKIP() << "handing the state to another owner needs root";
    TempDir dir;
    const std::string sub = fast_trainer(dir.path + "/sub", "fast trainer ran");
    testing::CliResult first = check(sub, dir.path);
    ASSERT_EQ(first.exit_code, 3) << first.output;  // the fast trainer is no trainer
    EXPECT_EQ(compiled(first.output), std::make_pair(3, 3)) << first.output;
    const std::string state = only_state(dir.path + "/incremental");
    ASSERT_FALSE(state.empty());
    const std::string saved = state + "/ccache";
    ASSERT_TRUE(fs::is_directory(saved));

    int edit = 0;
    // each case: tamper with the saved compile cache, edit one file (a build cache miss), check
    auto check_after = [&](const std::function<void()>& tamper) {
        tamper();
        write_text(sub + "/baseline/one.cpp",
                   "int one() { return 0; }  // edit " + std::to_string(++edit) + "\n");
        return check(sub, dir.path);
    };
    testing::CliResult clean = check_after([] {});
    EXPECT_EQ(compiled(clean.output), std::make_pair(0, 3))
        << "a comment preprocesses away: " << clean.output;

    const std::string elsewhere = dir.path + "/elsewhere";
    fs::create_directories(elsewhere);
    testing::CliResult linked = check_after([&] {
        fs::rename(saved, elsewhere + "/ccache");
        fs::create_directory_symlink(elsewhere + "/ccache", saved);
    });
    EXPECT_NE(linked.output.find("state was discarded (its compile cache is a symbolic link)"),
              std::string::npos)
        << linked.output;
    EXPECT_EQ(compiled(linked.output), std::make_pair(3, 3)) << linked.output;

    testing::CliResult owned = check_after([&] { ASSERT_EQ(lchown(saved.c_str(), 0, 0), 0); });
    EXPECT_NE(owned.output.find("its compile cache is owned by uid 0, not by the build user"),
              std::string::npos)
        << owned.output;
    EXPECT_EQ(compiled(owned.output), std::make_pair(3, 3)) << owned.output;

    testing::CliResult opened = check_after([&] { ASSERT_EQ(chmod(saved.c_str(), 0777), 0); });
    EXPECT_NE(opened.output.find("its compile cache is open to other users (mode 0777)"),
              std::string::npos)
        << opened.output;
    EXPECT_EQ(compiled(opened.output), std::make_pair(3, 3)) << opened.output;

    // and the state kept after that is good again
    testing::CliResult again = check_after([] {});
    EXPECT_EQ(again.output.find("discarded"), std::string::npos) << again.output;
    EXPECT_EQ(compiled(again.output), std::make_pair(0, 3)) << again.output;
}

// An overlay like fast_trainer whose configure step first runs `plant` in a shell, with
// $CCACHE_DIR the build's compile cache.
std::string planting_trainer(const std::string& dir, const std::string& plant) {
    fast_trainer(dir, "planting trainer ran");
    write_text(dir + "/baseline/CMakeLists.txt",
               "execute_process(COMMAND /bin/sh -c [==[" + plant +
                   "]==])\n"
                   "add_executable(trainopt-train main.cpp one.cpp two.cpp)\n");
    return dir;
}

TEST(IncrementalEndToEnd, AHostileBuildsLinksAreKeptAsLinksAndNeverFollowed) {
    REQUIRE_INCREMENTAL();
    TempDir dir;
    // what the harness would delete or change if it followed the planted links
    const std::string canary = dir.path + "/canary";
    write_text(canary + "/kept", "never reached through a link\n");
    const std::string sub = planting_trainer(
        dir.path + "/sub",
        "ln -s " + canary + " \"$CCACHE_DIR/canary\"; ln -s / \"$CCACHE_DIR/root\"");
    testing::CliResult first = check(sub, dir.path);
    ASSERT_EQ(first.exit_code, 3) << first.output;
    EXPECT_EQ(first.output.find("not saved"), std::string::npos) << first.output;
    const std::string state = only_state(dir.path + "/incremental");
    ASSERT_FALSE(state.empty());
    EXPECT_TRUE(fs::is_symlink(state + "/ccache/canary")) << "saved as a link";

    // restored, saved again (the old one removed), then the whole state cleared
    write_text(sub + "/baseline/two.cpp", "int two() { return 1; }  // edited\n");
    testing::CliResult second = check(sub, dir.path);
    EXPECT_EQ(compiled(second.output), std::make_pair(0, 3)) << second.output;
    write_text(sub + "/baseline/two.cpp", "int two() { return 1; }  // edited again\n");
    testing::CliResult cleared = check(sub, dir.path, {"--clear-incremental"});
    EXPECT_NE(cleared.output.find("state was cleared"), std::string::npos) << cleared.output;
    EXPECT_EQ(compiled(cleared.output), std::make_pair(3, 3)) << cleared.output;
    EXPECT_EQ(read_text(canary + "/kept"), "never reached through a link\n");
    EXPECT_TRUE(fs::exists("/etc/passwd"));
}

TEST(IncrementalEndToEnd, ACompileCacheDeeperThanCcachesIsNotSaved) {
    REQUIRE_INCREMENTAL();
    TempDir dir;
    const std::string sub = planting_trainer(dir.path + "/sub",
                                             "mkdir -p \"$CCACHE_DIR/a/b/c/d\" && "
                                             "echo deep > \"$CCACHE_DIR/a/b/c/d/file\"");
    testing::CliResult first = check(sub, dir.path);
    ASSERT_EQ(first.exit_code, 3) << first.output;
    EXPECT_NE(first.output.find("the compile cache was not saved: it nests directories deeper "
                                "than the 2 levels ccache uses"),
              std::string::npos)
        << first.output;
    const std::string state = only_state(dir.path + "/incremental");
    ASSERT_FALSE(state.empty());
    EXPECT_FALSE(fs::exists(state + "/ccache")) << "nothing was saved";
}

TEST(IncrementalEndToEnd, NoIncrementalAndScoreBuildFromScratch) {
    REQUIRE_INCREMENTAL();
    TempDir dir;
    const std::string sub = fast_trainer(dir.path + "/sub", "fast trainer ran");
    testing::CliResult incremental = check(sub, dir.path);
    ASSERT_EQ(incremental.exit_code, 3) << incremental.output;
    EXPECT_TRUE(built_incrementally(incremental.output)) << incremental.output;

    // the same tree: the incremental build in the build cache is not score's
    testing::CliResult score =
        run("score", sub, dir.path,
            {"--reps", "1", "--seed", "3", "--build-cache", dir.path + "/builds"});
    EXPECT_EQ(score.exit_code, 3) << score.output;
    EXPECT_FALSE(built_incrementally(score.output)) << score.output;
    EXPECT_NE(score.output.find("build: compiling the submission's trainer (sandbox"),
              std::string::npos)
        << "built from scratch: " << score.output;
    EXPECT_EQ(score.output.find("reused cached build"), std::string::npos) << score.output;

    // a clean build in the cache is reused by a check; --no-incremental never builds incrementally
    testing::CliResult reused = check(sub, dir.path);
    EXPECT_NE(reused.output.find("reused cached build"), std::string::npos) << reused.output;
    write_text(sub + "/baseline/two.cpp", "int two() { return 1; }  // edited\n");
    testing::CliResult scratch = check(sub, dir.path, {"--no-incremental"});
    EXPECT_FALSE(built_incrementally(scratch.output)) << scratch.output;
    EXPECT_EQ(compiled(scratch.output), std::make_pair(-1, -1)) << scratch.output;
}

}  // namespace
}  // namespace trainopt
