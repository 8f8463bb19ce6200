// The CLI end to end on the tiny test and edge suites: the shipped submissions are VALID, the
// example writes every report; bad input gives a clear error and a non-zero exit; ci compares
// reports.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scoring/report.h"
#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;

TEST(EndToEnd, ExampleSubmissionIsValidAndReportsAreWritten) {
    TempDir dir;
    auto r =
        testing::run_cli({"score", testing::project_root() + "/submissions/blas-tbb", "--suite",
                          "test", "--reps", "2", "--seed", "11", "--json", dir.path + "/r.json",
                          "--md", dir.path + "/r.md", "--html", dir.path + "/r.html"},
                         dir.path + "/log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    nlohmann::json j = testing::read_json(dir.path + "/r.json");
    EXPECT_EQ(j["verdict"], "VALID");
    EXPECT_EQ(j["schema_version"], kReportSchemaVersion);
    EXPECT_EQ(j["seed"], 11);
    EXPECT_EQ(j["tasks"][0]["baseline_seconds"].size(), 2u);
    EXPECT_GT(j["score"]["arithmetic_mean"].get<double>(), 0.0);
    EXPECT_EQ(j["score"]["human_reference"], 4.0);
    EXPECT_NE(testing::read_text(dir.path + "/r.html").find("<svg"), std::string::npos);
    EXPECT_NE(testing::read_text(dir.path + "/r.md").find("arithmetic mean"), std::string::npos);
    EXPECT_NE(r.output.find("rep 2/2"), std::string::npos);  // progress was shown
    // the trained models' quality, both sides, every repetition: the tiny task learns (ln 64 =
    // 4.16 nats untrained) and the submission's model is as good as the baseline's
    const nlohmann::json& task = j["tasks"][0];
    for (const char* key : {"baseline_final_loss", "submission_final_loss", "baseline_heldout_loss",
                            "submission_heldout_loss"}) {
        ASSERT_EQ(task[key].size(), 2u) << key;
        for (const nlohmann::json& loss : task[key]) {
            ASSERT_TRUE(loss.is_number()) << key;
            EXPECT_LT(loss.get<double>(), 3.5) << key;
        }
    }
    EXPECT_NEAR(task["submission_heldout_loss"][0].get<double>(),
                task["baseline_heldout_loss"][0].get<double>(), 1e-4);
    EXPECT_NE(testing::read_text(dir.path + "/r.md").find("## Model quality"), std::string::npos);
    EXPECT_NE(testing::read_text(dir.path + "/r.html").find("Model quality"), std::string::npos);

    // re-rendering a saved report works, and ci against itself with a huge allowance passes
    auto re = testing::run_cli({"report", dir.path + "/r.json", "--html", dir.path + "/again.html"},
                               dir.path + "/log2");
    EXPECT_EQ(re.exit_code, 0) << re.output;
}

// The shapes optimized trainers get wrong (tasks/edge: odd T, vocabularies that are not multiples
// of 16, batch 1 and 3, heads of 8, 16 and 48 channels, an LM head that cannot be transposed):
// both shipped submissions still train the same model on every one.
void expect_valid_on_the_edge_suite(const std::string& submission) {
    TempDir dir;
    auto r = testing::run_cli({"verify", testing::project_root() + "/submissions/" + submission,
                               "--suite", "edge", "--json", dir.path + "/r.json"},
                              dir.path + "/log");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json j = testing::read_json(dir.path + "/r.json");
    EXPECT_EQ(j["verdict"], "VALID");
    EXPECT_EQ(j["tasks"].size(), 5u);
}

TEST(EndToEnd, ExpertSubmissionIsValidOnTheEdgeShapes) {
    expect_valid_on_the_edge_suite("expert");
}

TEST(EndToEnd, ExampleSubmissionIsValidOnTheEdgeShapes) {
    expect_valid_on_the_edge_suite("blas-tbb");
}

// Real text (tasks/text-test): chaotic over its 1000 steps, so the whole-run trajectory is far
// outside the trajectory check's tolerances, and the task is checked step-locally; the expert
// passes the replay and every window.
TEST(EndToEnd, ExpertSubmissionIsValidOnRealTextCheckedLocally) {
    TempDir dir;
    auto r = testing::run_cli({"verify", testing::project_root() + "/submissions/expert", "--suite",
                               "text-test", "--seed", "100", "--json", dir.path + "/r.json"},
                              dir.path + "/log");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json j = testing::read_json(dir.path + "/r.json");
    EXPECT_EQ(j["verdict"], "VALID") << r.output;
    ASSERT_EQ(j["tasks"].size(), 1u);
    EXPECT_EQ(j["tasks"][0]["check"], "local");
    EXPECT_EQ(j["tasks"][0]["windows_checked"], 4);
    EXPECT_GT(j["tasks"][0]["max_loss_diff"].get<double>(), 1e-4);  // the run parted
}

// Generated suites (issue: generalization): the example and the expert train the same model on
// shapes drawn at scoring time, three seeds of eight tasks each, small enough for CI (the draw
// is the real one; only the target time and step range are smaller).
void expect_valid_on_generated_suites(const std::string& submission) {
    TempDir dir;
    testing::write_text(dir.path + "/ranges.toml",
                        "[generator]\nvocab_size = [32, 2048]\ncontext = [8, 96]\n"
                        "d_model = [16, 128]\nlayers = [1, 3]\nbatch = [1, 4]\n"
                        "steps = [8, 200]\ntarget_seconds = 0.3\nmax_step_gflop = 0.05\n");
    for (const char* seed : {"11", "12", "13"}) {
        const std::string json = dir.path + "/r" + seed + ".json";
        auto r = testing::run_cli({"verify", testing::project_root() + "/submissions/" + submission,
                                   "--suite", std::string("generated:") + seed + ":8",
                                   "--generator", dir.path + "/ranges.toml", "--json", json},
                                  dir.path + "/log" + seed);
        EXPECT_EQ(r.exit_code, 0) << r.output;
        const nlohmann::json j = testing::read_json(json);
        ASSERT_FALSE(j.is_discarded()) << r.output;
        EXPECT_EQ(j["verdict"], "VALID") << testing::all_reasons(j);
        EXPECT_EQ(j["tasks"].size(), 8u);
        EXPECT_EQ(j["generated_suite"]["name"], std::string("generated:") + seed + ":8");
        EXPECT_EQ(j["generated_suite"]["tasks"].size(), 8u);
    }
}

TEST(EndToEnd, ExpertSubmissionIsValidOnGeneratedSuites) {
    expect_valid_on_generated_suites("expert");
}

TEST(EndToEnd, ExampleSubmissionIsValidOnGeneratedSuites) {
    expect_valid_on_generated_suites("blas-tbb");
}

TEST(EndToEnd, VerifyAWorkspace) {
    TempDir dir;
    const std::string ws = dir.path + "/ws";
    auto init = testing::run_cli({"workspace", "init", ws}, dir.path + "/log");
    ASSERT_EQ(init.exit_code, 0) << init.output;
    EXPECT_TRUE(std::filesystem::exists(ws + "/TASK.md"));
    EXPECT_TRUE(std::filesystem::exists(ws + "/kernels/reference.cpp"));
    // an honest edit: a comment in the kernels
    std::string src = testing::read_text(ws + "/kernels/submission.cpp");
    testing::write_text(ws + "/kernels/submission.cpp", "// my edit\n" + src);
    auto v = testing::run_cli({"verify", ws, "--suite", "test", "--json", dir.path + "/v.json"},
                              dir.path + "/log2");
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_EQ(testing::read_json(dir.path + "/v.json")["verdict"], "VALID");
    // initialising over an existing workspace is refused
    EXPECT_NE(testing::run_cli({"workspace", "init", ws}, dir.path + "/log3").exit_code, 0);
}

TEST(EndToEnd, BadInputGivesClearErrors) {
    TempDir dir;
    auto r =
        testing::run_cli({"score", "/nonexistent/submission", "--suite", "test"}, dir.path + "/a");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;

    r = testing::run_cli({"score", "baseline", "--suite", "no-such-suite"}, dir.path + "/b");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("no-such-suite"), std::string::npos) << r.output;

    r = testing::run_cli({"score", "baseline", "--suite", "test", "--reps", "0"}, dir.path + "/c");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("--reps"), std::string::npos) << r.output;

    r = testing::run_cli({"frobnicate"}, dir.path + "/d");
    EXPECT_NE(r.exit_code, 0);

    testing::write_text(dir.path + "/prev.json", "[1, 2");
    r = testing::run_cli(
        {"ci", "baseline", "--suite", "test", "--against", dir.path + "/prev.json"},
        dir.path + "/e");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("not valid JSON"), std::string::npos) << r.output;

    // a submission that does not compile is rejected with the compiler's words
    testing::write_text(dir.path + "/broken/kernels/submission.cpp", "this is not C++\n");
    r = testing::run_cli(
        {"score", dir.path + "/broken", "--suite", "test", "--json", dir.path + "/broken.json"},
        dir.path + "/f");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.output.find("does not build"), std::string::npos) << r.output;
    EXPECT_EQ(testing::read_json(dir.path + "/broken.json")["verdict"], "REJECTED");
}

// An interrupted score leaves a complete, parseable report of what was measured so far and
// no trainer running. (No timing is asserted: the interrupt lands whenever the first
// repetition has been written.)
TEST(EndToEnd, InterruptionLosesNothingAlreadyMeasured) {
    TempDir dir;
    const std::string suite = dir.path + "/suite";
    std::string tiny = testing::read_text(testing::project_root() + "/tasks/test/tiny.toml");
    for (const char* name : {"one", "two", "three"}) {
        std::string text = tiny;
        text.replace(text.find("name = \"tiny\""), 13, std::string("name = \"") + name + "\"");
        testing::write_text(suite + "/" + name + ".toml", text);
    }
    const std::string json = dir.path + "/r.json";
    std::filesystem::create_directories(dir.path + "/work");
    std::filesystem::permissions(
        dir.path, std::filesystem::perms::owner_all | std::filesystem::perms::others_exec);
    SpawnSpec spec;
    spec.argv = {TRAINOPT_CLI, "baseline", "--suite", suite,       "--reps",
                 "5",          "--json",   json,      "--workdir", dir.path + "/work"};
    spec.env = sandbox_environment();
    spec.output_path = dir.path + "/log";
    pid_t pid = fork();
    if (pid == 0) {
        std::vector<char*> argv;
        for (auto& a : spec.argv) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    int status = 0;
    bool exited = false;
    // interrupt once the report holds a measured repetition
    auto measured = [&] {
        nlohmann::json partial = testing::read_json(json);
        return !partial.is_discarded() && partial["tasks"].is_array() &&
               !partial["tasks"].empty() && !partial["tasks"][0]["baseline_seconds"].empty();
    };
    for (int i = 0; i < 30000 && !measured(); i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            break;
        }
        usleep(20000);
    }
    ASSERT_FALSE(exited) << "trainopt ended before writing a report: "
                         << testing::read_text(dir.path + "/log");
    kill(pid, SIGINT);
    waitpid(pid, &status, 0);
    // the interrupted score removed its private directory
    EXPECT_TRUE(std::filesystem::is_empty(dir.path + "/work")) << "left behind in the work dir";
    nlohmann::json report = testing::read_json(json);
    ASSERT_FALSE(report.is_discarded()) << testing::read_text(json);
    EXPECT_TRUE(report["verdict"] == "INCOMPLETE" || report["verdict"] == "VALID")
        << report["verdict"];
    EXPECT_GE(report["tasks"].size(), 1u);
    EXPECT_GE(report["tasks"][0]["baseline_seconds"].size(), 1u);
}

// ci decides from speedups; crafted previous reports make the outcome certain on any machine.
TEST(EndToEnd, CiFlagsOnlyRealRegressions) {
    TempDir dir;
    auto run = testing::run_cli(
        {"baseline", "--suite", "test", "--reps", "3", "--json", dir.path + "/now.json"},
        dir.path + "/log");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    nlohmann::json fast = testing::read_json(dir.path + "/now.json");
    for (auto& t : fast["tasks"]) {
        for (auto& s : t["submission_seconds"]) s = s.get<double>() / 100.0;  // 100x faster before
    }
    testing::write_text(dir.path + "/fast.json", fast.dump());
    auto ci = testing::run_cli({"ci", "baseline", "--suite", "test", "--reps", "3", "--against",
                                dir.path + "/fast.json", "--max-slowdown", "0.5"},
                               dir.path + "/log2");
    EXPECT_EQ(ci.exit_code, 4) << ci.output;
    EXPECT_NE(ci.output.find("REGRESSION"), std::string::npos);

    nlohmann::json slow = testing::read_json(dir.path + "/now.json");
    for (auto& t : slow["tasks"]) {
        for (auto& s : t["submission_seconds"]) s = s.get<double>() * 100.0;  // 100x slower before
    }
    testing::write_text(dir.path + "/slow.json", slow.dump());
    ci = testing::run_cli({"ci", "baseline", "--suite", "test", "--reps", "3", "--against",
                           dir.path + "/slow.json", "--max-slowdown", "0.5"},
                          dir.path + "/log3");
    EXPECT_EQ(ci.exit_code, 0) << ci.output;
    EXPECT_NE(ci.output.find("no significant regression"), std::string::npos);
}

// An overlay of the pristine trainer whose every training step spins for `extra` times its own
// duration afterwards: a trainer (1 + extra) times slower that trains the same model. The same
// injection is what scripts/ci-power.sh measures detection power with.
std::string slowed_baseline_overlay(const std::string& dir, double extra) {
    std::string train = testing::read_text(testing::project_root() + "/baseline/train.cpp");
    const std::string loop =
        "for (int step = loaded->start_step; step < loaded->stop_step; step++) {";
    const size_t at = train.find(loop);
    if (at == std::string::npos) return "";
    train.insert(at + loop.size(),
                 "\n        struct SpinAfterStep {\n"
                 "            std::chrono::steady_clock::time_point start = "
                 "std::chrono::steady_clock::now();\n"
                 "            ~SpinAfterStep() {\n"
                 "                const auto until = std::chrono::steady_clock::now() + "
                 "(std::chrono::steady_clock::now() - start) * " +
                     std::to_string(extra) +
                     ";\n"
                     "                while (std::chrono::steady_clock::now() < until) {\n"
                     "                }\n"
                     "            }\n"
                     "        } spin_after_step;\n");
    testing::write_text(dir + "/baseline/train.cpp", train);
    return dir;
}

// Paired ci: the same trainer against itself is never a regression; a trainer twice as slow is
// one, decided within the budget on any machine this suite runs on.
TEST(EndToEnd, PairedCiComparesTwoVersionsDirectly) {
    TempDir dir;
    auto same = testing::run_cli({"ci", "baseline", "--previous", "baseline", "--suite", "test",
                                  "--budget", "20", "--json", dir.path + "/same.json"},
                                 dir.path + "/log");
    EXPECT_TRUE(same.exit_code == 0 || same.exit_code == 5) << same.output;
    nlohmann::json report = testing::read_json(dir.path + "/same.json");
    ASSERT_FALSE(report.is_discarded()) << same.output;
    EXPECT_NE(report["verdict"], "REGRESSION");
    EXPECT_GE(report["rounds"].get<int>(), 3);
    EXPECT_EQ(report["tasks"][0]["previous_seconds"].size(),
              report["tasks"][0]["current_seconds"].size());
    // every round's wall time, for scripts/ci-replay.sh
    EXPECT_EQ(report["round_seconds"].size(), report["rounds"].get<size_t>());
    EXPECT_GT(report["setup_seconds"].get<double>(), 0);

    const std::string slow = slowed_baseline_overlay(dir.path + "/slow", 1.0);
    ASSERT_FALSE(slow.empty()) << "the trainer's step loop moved; update the injection";
    auto slower = testing::run_cli({"ci", slow, "--previous", "baseline", "--suite", "test",
                                    "--budget", "120", "--json", dir.path + "/slow.json"},
                                   dir.path + "/log2");
    EXPECT_EQ(slower.exit_code, 4) << slower.output;
    report = testing::read_json(dir.path + "/slow.json");
    EXPECT_EQ(report["verdict"], "REGRESSION") << slower.output;
    EXPECT_GT(report["suite_change"]["change"].get<double>(), 0.5);

    auto usage = testing::run_cli({"ci", "baseline", "--suite", "test"}, dir.path + "/log3");
    EXPECT_NE(usage.exit_code, 0);
    EXPECT_NE(usage.output.find("--previous"), std::string::npos) << usage.output;
}

}  // namespace
}  // namespace trainopt
