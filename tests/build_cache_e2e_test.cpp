// The build cache through the CLI (harness/build_cache.h): a second verify of the same submission
// reuses its trainer; a changed submission, a corrupt entry, --no-build-cache and an unsafe cache
// directory build; a failed build is not stored; a submission's build cannot reach the cache.
// The submissions here replace the trainer with one that builds in seconds, prints a line and
// exits 1 (INVALID, with the line in the reason), so no test waits for a real trainer's build;
// the unit tests (build_cache_test.cpp) check the cache's parts byte for byte.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tasks/sha256.h"
#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::cache_entries;
using testing::read_text;
using testing::TempDir;
using testing::write_text;

// An overlay whose trainer builds from one small file and only prints `line`.
std::string fast_trainer(const std::string& dir, const std::string& line) {
    write_text(dir + "/baseline/CMakeLists.txt",
               "# builds in seconds: the build cache's tests\n"
               "add_executable(trainopt-train fast.cpp)\n");
    write_text(dir + "/baseline/fast.cpp",
               "#include <cstdio>\nint main() { std::puts(\"" + line + "\"); return 1; }\n");
    return dir;
}

// An overlay whose CMake configuration fails at once, after running `probe` in a shell.
std::string failing_build(const std::string& dir, const std::string& probe) {
    write_text(dir + "/baseline/CMakeLists.txt",
               "execute_process(COMMAND /bin/sh -c [==[" + probe +
                   "]==] OUTPUT_VARIABLE out ERROR_VARIABLE err)\n"
                   "message(FATAL_ERROR \"probe said: [${out}${err}]\")\n");
    return dir;
}

struct Verified {
    testing::CliResult cli;
    nlohmann::json report;
    std::string key() const { return report["submission"]["build"]["cache_key"]; }
    bool from_cache() const { return report["submission"]["build"]["from_cache"]; }
    bool compiled() const { return cli.output.find("build: compiling") != std::string::npos; }
    bool reused() const {
        return cli.output.find("build: reused cached build") != std::string::npos;
    }
};

// trainopt verify on the test suite, with `args` added and the environment's XDG_CACHE_HOME
// replaced by `cache_home` when given.
Verified verify(const std::string& submission, const std::string& work,
                const std::vector<std::string>& args, const std::string& cache_home = "") {
    static int runs = 0;
    const std::string tag = std::to_string(++runs);
    SpawnSpec spec;
    spec.argv = {TRAINOPT_CLI, "verify", submission,
                 "--suite",    "test",   "--seed",
                 "5",          "--json", work + "/r" + tag + ".json"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = testing::test_environment();
    if (!cache_home.empty()) {
        std::erase_if(spec.env,
                      [](const std::string& v) { return v.rfind("XDG_CACHE_HOME=", 0) == 0; });
        spec.env.push_back("XDG_CACHE_HOME=" + cache_home);
    }
    spec.output_path = work + "/log" + tag;
    spec.timeout_seconds = 900;
    Result<ProcessOutcome> outcome = run_process(spec);
    Verified v;
    v.cli = {outcome && outcome->term_signal == 0 ? outcome->exit_code : -1,
             read_text(spec.output_path)};
    v.report = testing::read_json(work + "/r" + tag + ".json");
    return v;
}

TEST(BuildCacheEndToEnd, SecondRunReusesTheBuildFromTheDefaultCache) {
    TempDir dir;
    const std::string sub = fast_trainer(dir.path + "/a", "fast trainer A ran");
    const std::string xdg = dir.path + "/xdg";
    Verified first = verify(sub, dir.path, {}, xdg);
    ASSERT_EQ(first.cli.exit_code, 3) << first.cli.output;  // INVALID: the trainer exits 1
    EXPECT_TRUE(first.compiled()) << first.cli.output;
    EXPECT_FALSE(first.from_cache());
    ASSERT_EQ(first.key().size(), 64u);
    EXPECT_NE(first.cli.output.find("build: cached as " + first.key().substr(0, 12)),
              std::string::npos)
        << first.cli.output;
    const std::string cache = xdg + "/trainopt/builds";
    EXPECT_EQ(cache_entries(cache), std::vector<std::string>{first.key()});
    EXPECT_EQ(fs::status(cache).permissions(), fs::perms::owner_all);

    Verified second = verify(sub, dir.path, {}, xdg);
    ASSERT_EQ(second.cli.exit_code, 3) << second.cli.output;
    EXPECT_FALSE(second.compiled()) << second.cli.output;
    EXPECT_NE(second.cli.output.find("build: reused cached build " + first.key().substr(0, 12) +
                                     " (built in "),
              std::string::npos)
        << second.cli.output;
    EXPECT_TRUE(second.from_cache());
    EXPECT_EQ(second.key(), first.key());
    EXPECT_EQ(second.report["submission"]["build"]["built_at"],
              first.report["submission"]["build"]["built_at"]);
    // the reused copy is the trainer that ran (and was audited: not REJECTED)
    EXPECT_EQ(second.report["verdict"], "INVALID");
    EXPECT_NE(testing::all_reasons(second.report).find("fast trainer A ran"), std::string::npos)
        << testing::all_reasons(second.report);
}

TEST(BuildCacheEndToEnd, ChangedSourcesAreBuiltAndFailedBuildsAreNotStored) {
    TempDir dir;
    const std::string cache = dir.path + "/cache";
    Verified a = verify(fast_trainer(dir.path + "/a", "fast trainer A ran"), dir.path,
                        {"--build-cache", cache});
    ASSERT_EQ(a.cli.exit_code, 3) << a.cli.output;
    // one byte of the trainer's source changed: another key, built
    Verified b = verify(fast_trainer(dir.path + "/b", "fast trainer B ran"), dir.path,
                        {"--build-cache", cache});
    ASSERT_EQ(b.cli.exit_code, 3) << b.cli.output;
    EXPECT_TRUE(b.compiled()) << b.cli.output;
    EXPECT_FALSE(b.reused()) << b.cli.output;
    EXPECT_NE(b.key(), a.key());
    EXPECT_NE(testing::all_reasons(b.report).find("fast trainer B ran"), std::string::npos);
    // a build that fails is REJECTED, every time, and never stored
    const std::string broken = failing_build(dir.path + "/broken", "echo no");
    for (int i = 0; i < 2; i++) {
        Verified f = verify(broken, dir.path, {"--build-cache", cache});
        EXPECT_EQ(f.cli.exit_code, 3) << f.cli.output;
        EXPECT_TRUE(f.compiled()) << f.cli.output;
        EXPECT_EQ(f.report["verdict"], "REJECTED");
        EXPECT_NE(testing::all_reasons(f.report).find("does not build"), std::string::npos);
    }
    EXPECT_EQ(cache_entries(cache).size(), 2u);
}

TEST(BuildCacheEndToEnd, ACorruptEntryIsRebuiltAndReplaced) {
    TempDir dir;
    const std::string cache = dir.path + "/cache";
    const std::string sub = fast_trainer(dir.path + "/a", "fast trainer A ran");
    Verified first = verify(sub, dir.path, {"--build-cache", cache});
    ASSERT_EQ(first.cli.exit_code, 3) << first.cli.output;
    const std::string binary = cache + "/" + first.key() + "/trainopt-train";
    std::string bytes = read_text(binary);
    ASSERT_GT(bytes.size(), 100u);
    bytes[bytes.size() / 2] ^= 0x40;
    write_text(binary, bytes);

    Verified rebuilt = verify(sub, dir.path, {"--build-cache", cache});
    ASSERT_EQ(rebuilt.cli.exit_code, 3) << rebuilt.cli.output;
    EXPECT_NE(rebuilt.cli.output.find("was not trusted and was removed"), std::string::npos)
        << rebuilt.cli.output;
    EXPECT_NE(rebuilt.cli.output.find("SHA-256"), std::string::npos) << rebuilt.cli.output;
    EXPECT_TRUE(rebuilt.compiled());
    EXPECT_FALSE(rebuilt.from_cache());
    EXPECT_NE(testing::all_reasons(rebuilt.report).find("fast trainer A ran"), std::string::npos);
    // the new entry is whole again, and used
    const nlohmann::json manifest =
        testing::read_json(cache + "/" + first.key() + "/manifest.json");
    EXPECT_EQ(manifest["binary_sha256"], sha256_hex(read_text(binary)));
    Verified again = verify(sub, dir.path, {"--build-cache", cache});
    EXPECT_TRUE(again.reused()) << again.cli.output;
}

TEST(BuildCacheEndToEnd, NoBuildCacheBuildsAndStoresNothing) {
    TempDir dir;
    const std::string cache = dir.path + "/cache";
    const std::string sub = fast_trainer(dir.path + "/a", "fast trainer A ran");
    Verified stored = verify(sub, dir.path, {"--build-cache", cache});
    ASSERT_EQ(stored.cli.exit_code, 3) << stored.cli.output;
    const std::string manifest = read_text(cache + "/" + stored.key() + "/manifest.json");

    Verified off = verify(sub, dir.path, {"--build-cache", cache, "--no-build-cache"});
    ASSERT_EQ(off.cli.exit_code, 3) << off.cli.output;
    EXPECT_TRUE(off.compiled()) << off.cli.output;
    EXPECT_FALSE(off.reused()) << off.cli.output;
    EXPECT_FALSE(off.from_cache());
    EXPECT_EQ(off.key(), "");
    EXPECT_EQ(read_text(cache + "/" + stored.key() + "/manifest.json"), manifest);
    Verified other = verify(fast_trainer(dir.path + "/b", "fast trainer B ran"), dir.path,
                            {"--no-build-cache", "--build-cache", cache});
    ASSERT_EQ(other.cli.exit_code, 3) << other.cli.output;
    EXPECT_EQ(cache_entries(cache).size(), 1u);
}

TEST(BuildCacheEndToEnd, AnUnsafeCacheDirectoryIsNotUsed) {
    TempDir dir;
    const std::string real = dir.path + "/real";
    const std::string sub = fast_trainer(dir.path + "/a", "fast trainer A ran");
    Verified stored = verify(sub, dir.path, {"--build-cache", real});
    ASSERT_EQ(stored.cli.exit_code, 3) << stored.cli.output;
    const std::string manifest = read_text(real + "/" + stored.key() + "/manifest.json");

    // through a symbolic link: refused, built instead, the entry behind the link neither used
    // nor changed
    fs::create_directory_symlink(real, dir.path + "/link");
    Verified linked = verify(sub, dir.path, {"--build-cache", dir.path + "/link"});
    ASSERT_EQ(linked.cli.exit_code, 3) << linked.cli.output;
    EXPECT_NE(linked.cli.output.find("build cache not used"), std::string::npos)
        << linked.cli.output;
    EXPECT_NE(linked.cli.output.find("is a symbolic link"), std::string::npos) << linked.cli.output;
    EXPECT_TRUE(linked.compiled());
    EXPECT_FALSE(linked.reused());
    EXPECT_FALSE(linked.from_cache());

    // writable by everyone: refused the same way
    chmod(real.c_str(), 0777);
    Verified open = verify(sub, dir.path, {"--build-cache", real});
    ASSERT_EQ(open.cli.exit_code, 3) << open.cli.output;
    EXPECT_NE(open.cli.output.find("writable by its group or by everyone"), std::string::npos)
        << open.cli.output;
    EXPECT_TRUE(open.compiled());
    EXPECT_EQ(read_text(real + "/" + stored.key() + "/manifest.json"), manifest);
    EXPECT_EQ(cache_entries(real).size(), 1u);
}

// The binary audit runs on a reused trainer as on a fresh one: a trainer that defines its own
// clock is REJECTED from the cache too.
TEST(BuildCacheEndToEnd, AReusedTrainerIsAuditedAgain) {
    TempDir dir;
    const std::string cache = dir.path + "/cache";
    const std::string sub = dir.path + "/clock";
    write_text(sub + "/baseline/CMakeLists.txt", "add_executable(trainopt-train fast.c)\n");
    write_text(sub + "/baseline/fast.c",
               "#include <stdio.h>\n"
               "int clock_gettime(int clock, void* ts) { (void)clock; (void)ts; return 0; }\n"
               "int main(void) { puts(\"my own clock\"); return 1; }\n");
    for (int run = 0; run < 2; run++) {
        Verified v = verify(sub, dir.path, {"--build-cache", cache});
        EXPECT_EQ(v.cli.exit_code, 3) << v.cli.output;
        EXPECT_EQ(run == 0, v.compiled()) << v.cli.output;
        EXPECT_EQ(run == 1, v.reused()) << v.cli.output;
        EXPECT_EQ(v.report["verdict"], "REJECTED");
        EXPECT_NE(testing::all_reasons(v.report).find("defines its own clock_gettime()"),
                  std::string::npos)
            << testing::all_reasons(v.report);
    }
}

// A hostile build looks for the cache where it is on the host, reads an entry and tries to
// overwrite its binary and plant a file: in bubblewrap the path does not exist; without it
// (as root) the build runs as nobody and the cache is mode 0700. Either way the entry is intact
// and still used.
TEST(BuildCacheEndToEnd, ASubmissionsBuildCannotReadOrWriteTheCache) {
    TempDir dir;
    const std::string cache = dir.path + "/cache";
    const std::string sub = fast_trainer(dir.path + "/a", "fast trainer A ran");
    Verified stored = verify(sub, dir.path, {"--build-cache", cache});
    ASSERT_EQ(stored.cli.exit_code, 3) << stored.cli.output;
    const std::string entry = cache + "/" + stored.key();
    const std::string binary = read_text(entry + "/trainopt-train");
    const std::string probe =
        "ls -la " + cache + "; cat " + entry + "/manifest.json; echo evil > " + entry +
        "/trainopt-train; echo evil > " + cache + "/" + std::string(64, 'f') + "; echo done";
    const std::string hostile = failing_build(dir.path + "/hostile", probe);
    std::vector<std::vector<std::string>> modes = {{}};
    if (geteuid() == 0) modes.push_back({"--no-sandbox"});  // not root: no cache without bwrap
    for (const std::vector<std::string>& mode : modes) {
        SCOPED_TRACE(mode.empty() ? "bubblewrap" : "no sandbox");
        std::vector<std::string> args = {"--build-cache", cache};
        args.insert(args.end(), mode.begin(), mode.end());
        Verified h = verify(hostile, dir.path, args);
        EXPECT_EQ(h.report["verdict"], "REJECTED") << h.cli.output;
        const std::string said = testing::all_reasons(h.report);
        EXPECT_NE(said.find("probe said"), std::string::npos) << said;
        EXPECT_NE(said.find("done"), std::string::npos) << said;  // the probe ran to its end
        EXPECT_EQ(said.find("binary_sha256"), std::string::npos) << said;  // read nothing
        EXPECT_EQ(read_text(entry + "/trainopt-train"), binary);
        EXPECT_EQ(cache_entries(cache), std::vector<std::string>{stored.key()});
    }
    Verified again = verify(sub, dir.path, {"--build-cache", cache});
    EXPECT_TRUE(again.reused()) << again.cli.output;
}

}  // namespace
}  // namespace trainopt
