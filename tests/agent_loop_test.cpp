// The evaluated agent's loop: what a failed check says (the first and the worst step over the
// tolerance, losses with the digits that tell them apart, the final weights per tensor with the
// kernel behind each), the terminal's plain-text report, verify's heading, the refusal of a
// submission that changes nothing, unknown commands, the trainer's environment, and a workspace
// whose TASK.md names the trainopt that made it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>

#include "harness/intake.h"
#include "harness/sandbox.h"
#include "harness/step_check.h"
#include "harness/trusted_inputs.h"
#include "harness/verify.h"
#include "kernels/gpt.h"
#include "scoring/report.h"
#include "tasks/data.h"
#include "test_util.h"

namespace trainopt {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text;

TaskSpec tiny_task() {
    Result<TaskSpec> task = load_task(testing::project_root() + "/tasks/test/tiny.toml");
    EXPECT_TRUE(task) << task.error();
    return task.value_or(TaskSpec{});
}

// The slice of `config`'s layout named `tensor` (in layer `layer`).
ParamSlice slice_of(const GPTConfig& config, const std::string& tensor, int layer) {
    for (const ParamSlice& s : param_slices(config)) {
        if (kParamTensorNames[s.tensor] == tensor && s.layer == layer) return s;
    }
    ADD_FAILURE() << "no slice " << tensor << " of layer " << layer;
    return {};
}

// Every "A vs reference B" in text: the pairs of numbers as printed.
std::vector<std::pair<std::string, std::string>> versus_pairs(const std::string& text) {
    std::vector<std::pair<std::string, std::string>> out;
    const std::regex pair(R"(([0-9.eE+-]+) vs reference ([0-9.eE+-]+))");
    for (std::sregex_iterator it(text.begin(), text.end(), pair), end; it != end; ++it)
        out.push_back({(*it)[1], (*it)[2]});
    return out;
}

// A reference run of the tiny task (its weights moved by a fixed update from the seed's initial
// ones) and a submission that parts from it at two steps and in one tensor.
struct Fixture {
    TaskSpec task = tiny_task();
    GPTConfig config = gpt_config_of(task);
    ReferenceRun reference;
    RunOutputs submission;
    std::vector<int> heldout;

    Fixture() {
        Result<TokenSplit> split = make_task_data(task);
        EXPECT_TRUE(split) << split.error();
        if (split) heldout = split->heldout;
        const size_t n = num_parameters(config);
        reference.init_params.assign(n, 0.0f);
        init_params(reference.init_params.data(), config, 5);
        reference.outputs.checkpoint.config = config;
        reference.outputs.checkpoint.steps = task.train.steps;
        reference.outputs.checkpoint.params = reference.init_params;
        for (size_t i = 0; i < n; i++)
            reference.outputs.checkpoint.params[i] += 1e-3f * (float)((i * 7919) % 13) - 6e-3f;
        for (int step = 0; step < task.train.steps; step++)
            reference.outputs.losses.push_back(4.0f - 1e-3f * (float)step + 1e-7f * (float)step);
        reference.outputs.nonce = "n";
        reference.heldout = heldout_loss(task, reference.outputs.checkpoint.params, heldout);
        submission = reference.outputs;
    }

    Verification verify() const { return verify_run(task, reference, submission, "n", heldout); }
};

TEST(AgentLoop, AFailedTrajectoryNamesTheFirstAndTheWorstStepWithTheirLosses) {
    Fixture f;
    ASSERT_TRUE(f.verify().valid()) << f.verify().reasons.front();
    const double tol = f.task.tolerances.loss_abs;
    f.submission.losses[12] += (float)(3 * tol);   // first over the tolerance
    f.submission.losses[40] += (float)(40 * tol);  // the worst
    f.submission.losses[90] += (float)(2 * tol);
    const Verification v = f.verify();
    ASSERT_FALSE(v.valid());
    EXPECT_EQ(v.comparison.first_step_over, 12);
    EXPECT_EQ(v.comparison.worst_step, 40);
    EXPECT_NEAR(v.comparison.first_diff_over, 3 * tol, tol * 0.1);
    const std::string reason = v.reasons.front();
    EXPECT_EQ(reason.rfind("loss trajectory differs from the reference: |delta| = ", 0), 0u)
        << reason;
    EXPECT_NE(reason.find("at step 40 > tolerance"), std::string::npos) << reason;
    EXPECT_NE(reason.find("the worst step); first over the tolerance at step 12"),
              std::string::npos)
        << reason;
    // each pair of losses printed with the digits that tell them apart
    const auto pairs = versus_pairs(reason);
    ASSERT_EQ(pairs.size(), 2u) << reason;
    for (const auto& [sub, ref] : pairs) EXPECT_NE(sub, ref) << reason;

    // the first step over is the worst one: said once
    Fixture g;
    g.submission.losses[7] += (float)(5 * tol);
    const std::string once = g.verify().reasons.front();
    EXPECT_NE(once.find("at step 7 > tolerance"), std::string::npos) << once;
    EXPECT_NE(once.find("the first step over the tolerance)"), std::string::npos) << once;
    EXPECT_EQ(versus_pairs(once).size(), 1u) << once;

    // a NaN loss is over any tolerance, and the first one stays the worst
    Fixture h;
    h.submission.losses[3] = NAN;
    h.submission.losses[5] = NAN;
    const Verification nan = h.verify();
    ASSERT_FALSE(nan.valid());
    EXPECT_EQ(nan.comparison.worst_step, 3);
    EXPECT_EQ(nan.comparison.first_step_over, 3);
}

TEST(AgentLoop, TheQualityBandOfAChaoticTaskRejectsOnlyAWorseModel) {
    Fixture f;
    f.task.verify.check = CheckKind::local;
    f.task.tolerances.heldout_band = 1e-3;
    // a better model than the reference's, by more than the band: a legitimate run of a chaotic
    // task may end there
    f.reference.heldout += 0.5;
    ASSERT_TRUE(f.verify().valid()) << f.verify().reasons.front();
    // a worse one by more than the band is rejected, saying by how much
    f.reference.heldout -= 1.0;
    const Verification v = f.verify();
    ASSERT_FALSE(v.valid());
    EXPECT_NE(v.reasons.front().find("worse by 0.5"), std::string::npos) << v.reasons.front();
    EXPECT_NE(v.reasons.front().find("quality band"), std::string::npos) << v.reasons.front();
    // a held-out loss that is not a number is never within the band
    f.reference.heldout = NAN;
    EXPECT_FALSE(f.verify().valid());
}

TEST(AgentLoop, HeldOutAndWeightReasonsShowTheDifference) {
    Fixture f;
    // one tensor of one layer parted from the reference: the held-out loss and the weights
    const ParamSlice qkvw = slice_of(f.config, "qkvw", 1);
    for (size_t i = qkvw.offset; i < qkvw.offset + qkvw.size; i++)
        f.submission.checkpoint.params[i] = f.reference.init_params[i];
    const Verification v = f.verify();
    ASSERT_FALSE(v.valid());
    std::string heldout, weights;
    for (const std::string& r : v.reasons) {
        if (r.find("held-out loss") != std::string::npos) heldout = r;
        if (r.find("final weights differ") != std::string::npos) weights = r;
    }
    ASSERT_FALSE(weights.empty());
    EXPECT_NE(weights.find("the farthest tensor is qkvw of layer 1, at 1;"), std::string::npos)
        << weights;
    EXPECT_NE(weights.find("qkv projection"), std::string::npos) << weights;
    if (!heldout.empty()) {
        const auto pairs = versus_pairs(heldout);
        ASSERT_EQ(pairs.size(), 1u) << heldout;
        EXPECT_NE(pairs[0].first, pairs[0].second) << heldout;
        EXPECT_GE(pairs[0].first.size(), 6u) << heldout;
    }

    // the table: every slice, the farthest first: the tensor left at its initial values is
    // about 1 (none of the reference's update), every other 0
    const std::vector<TensorDistance>& t = v.comparison.tensors;
    ASSERT_EQ(t.size(), param_slices(f.config).size());
    EXPECT_EQ(t.size(), 12u * 2 + 4);
    EXPECT_EQ(t[0].slice.name(), "qkvw of layer 1");
    EXPECT_NEAR(t[0].rel, 1.0, 1e-6);
    for (size_t i = 1; i < t.size(); i++) {
        EXPECT_EQ(t[i].rel, 0.0) << t[i].slice.name();
        EXPECT_GE(t[i - 1].rel, t[i].rel);
    }
    EXPECT_NE(std::string(gradient_kernel_of(t[0].slice.tensor)).find("matmul_backward"),
              std::string::npos);
    EXPECT_NE(std::string(gradient_kernel_of(0)).find("encoder_backward"), std::string::npos);
    EXPECT_NE(std::string(gradient_kernel_of(0)).find("LM head"), std::string::npos);
}

// compare_window takes its per-tensor distances from the same function as the whole run.
TEST(AgentLoop, WindowsNameTheirWorstTensorAsBefore) {
    const GPTConfig config = gpt_config_of(tiny_task());
    TrainingState start = initial_state(config, 3);
    ReferenceSteps reference;
    reference.end = start;
    for (float& p : reference.end.params) p += 1e-3f;
    reference.losses = {1.0f, 1.0f};
    TrainingState sub = reference.end;
    const ParamSlice fcb = slice_of(config, "fcb", 0);
    for (size_t i = fcb.offset; i < fcb.offset + fcb.size; i++) sub.params[i] = start.params[i];
    const WindowDeviation d = compare_window({10, 2}, start, reference, {1.0f, 1.0f}, sub, config);
    EXPECT_EQ(d.worst_tensor, "fcb of layer 0");
    EXPECT_NEAR(d.tensor_rel, 1.0, 1e-5);
    EXPECT_EQ(d.frozen_tensor, "");
}

ScoreReport hostile_verify_report() {
    ScoreReport r;
    r.command = "verify";
    r.created_at = "2026-12-05T00:00:00Z";
    r.submission = "ws";
    r.submission_kind = "workspace";
    r.suite = "test";
    r.sandbox = "bubblewrap";
    r.threads = 2;
    r.reps = 1;
    r.complete = true;
    TaskReport t;
    t.name = "tiny";
    t.hot_spot = "none";
    t.baseline_seconds = {1.0};
    t.submission_seconds = {0.5};
    t.steps = 150;
    t.step_gflop = 0.001;
    t.valid = false;
    t.reasons = {
        "loss trajectory differs from the reference: |delta| = 0.0046 nats at step 562 > "
        "tolerance 0.0001 (2.30958 vs reference 2.30496, the worst step)",
        "the submission's trainer exited with status 1: \x1b[2Jboom\n# forged | 99x |\nline 3"};
    t.max_loss_diff = 0.0046;
    t.worst_loss_step = 562;
    t.first_loss_step_over = 31;
    t.first_loss_diff_over = 1.2e-4;
    for (int i = 0; i < 12; i++)
        t.tensors.push_back({i == 0 ? "qkvw\x1b]0;x\x07" : "fcw", i % 3 - 1, 1.0 / (i + 1),
                             "matmul_backward | *of* `x`"});
    t.tensors.push_back({"wpe", -1, INFINITY, "encoder_backward"});
    r.tasks = {t};
    finalize_report(r);
    return r;
}

// True when a line of text is a control character's or an escape's: what must not reach a
// terminal (written independently of scoring/untrusted_text.cpp).
bool has_control(const std::string& s) {
    for (unsigned char c : s) {
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return true;
    }
    return false;
}

TEST(AgentLoop, TheTerminalGetsPlainTextHeadedVerifyWithoutEscapes) {
    const ScoreReport r = hostile_verify_report();
    const std::string text = report_to_text(r);
    EXPECT_EQ(text.rfind("trainopt verify: INVALID\n", 0), 0u) << text;
    EXPECT_NE(text.find("|delta| = 0.0046 nats at step 562"), std::string::npos) << text;
    EXPECT_EQ(text.find("\\|"), std::string::npos) << text;
    EXPECT_EQ(text.find("\\*"), std::string::npos) << text;
    EXPECT_NE(text.find("peak not measured"), std::string::npos) << text;
    EXPECT_EQ(text.find("0.0 GFLOP/s"), std::string::npos) << text;
    EXPECT_FALSE(has_control(text)) << text;
    // a multi-line reason's continuation lines are indented: nothing passes for trainopt's own
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        EXPECT_NE(line.rfind("# forged", 0), 0u) << text;
        EXPECT_NE(line.rfind("line 3", 0), 0u) << text;
    }
    // the per-tensor table: the farthest 8 of 13 here, the rest in the files
    EXPECT_NE(text.find("Final weights per tensor"), std::string::npos) << text;
    EXPECT_NE(text.find("the 8 farthest of 13"), std::string::npos) << text;
    EXPECT_NE(text.find("matmul_backward | *of* `x`"), std::string::npos) << text;

    const std::string md = report_to_markdown(r);
    EXPECT_EQ(md.rfind("# trainopt verify: INVALID\n", 0), 0u) << md;
    EXPECT_NE(md.find("peak not measured"), std::string::npos) << md;
    EXPECT_EQ(md.find("0.0 GFLOP/s"), std::string::npos) << md;
    EXPECT_NE(md.find("## Final weights per tensor"), std::string::npos) << md;
    EXPECT_NE(md.find("\\|delta\\|"), std::string::npos) << md;  // the Markdown keeps escapes
    EXPECT_NE(md.find("| wpe | - | inf | encoder"), std::string::npos) << md;
    EXPECT_FALSE(has_control(md)) << md;
    EXPECT_NE(report_to_html(r).find("trainopt verify"), std::string::npos);

    // a score shows the table only for a failed task
    ScoreReport scored = r;
    scored.command = "score";
    scored.peak_gflops = 181.3;
    EXPECT_NE(report_to_text(scored).find("measured peak 181.3 GFLOP/s"), std::string::npos);
    EXPECT_NE(report_to_text(scored).find("Final weights per tensor"), std::string::npos);
    scored.tasks[0].valid = true;
    scored.tasks[0].reasons.clear();
    finalize_report(scored);
    EXPECT_EQ(report_to_text(scored).rfind("trainopt score: VALID", 0), 0u);
    EXPECT_EQ(report_to_text(scored).find("Final weights per tensor"), std::string::npos);
    EXPECT_EQ(report_to_markdown(scored).find("Final weights per tensor"), std::string::npos);

    // refused before any run: the reason, no numbers
    ScoreReport rejected = r;
    rejected.tasks.clear();
    rejected.rejected = {"intake: the submission changes nothing: the patch is empty"};
    finalize_report(rejected);
    const std::string refused = report_to_text(rejected);
    EXPECT_EQ(refused.rfind("trainopt verify: REJECTED\n", 0), 0u) << refused;
    EXPECT_NE(refused.find("REJECTED: intake: the submission changes nothing"), std::string::npos)
        << refused;
    EXPECT_EQ(refused.find("arithmetic mean"), std::string::npos) << refused;
}

TEST(AgentLoop, TheNewReportFieldsRoundTripThroughJson) {
    const ScoreReport r = hostile_verify_report();
    const nlohmann::json j = report_to_json(r);
    EXPECT_EQ(j["command"], "verify");
    EXPECT_EQ(j["tasks"][0]["first_loss_step_over"], 31);
    EXPECT_EQ(j["tasks"][0]["worst_loss_step"], 562);
    EXPECT_EQ(j["tasks"][0]["tensors"].size(), 13u);
    EXPECT_EQ(j["tasks"][0]["tensors"][12]["rel"], "inf");
    Result<ScoreReport> back = report_from_json(j);
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(report_to_json(*back).dump(), j.dump());
    EXPECT_TRUE(std::isinf(back->tasks[0].tensors[12].rel));
    // earlier reports: a score, no table
    nlohmann::json old = j;
    old.erase("command");
    old["tasks"][0].erase("tensors");
    old["tasks"][0].erase("first_loss_step_over");
    back = report_from_json(old);
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(back->command, "score");
    EXPECT_TRUE(back->tasks[0].tensors.empty());
    EXPECT_EQ(back->tasks[0].first_loss_step_over, -1);
    // a command that is none of trainopt's is refused, not shown in a heading
    nlohmann::json forged = j;
    forged["command"] = "score: VALID\n# forged";
    EXPECT_FALSE(report_from_json(forged));
    forged = j;
    forged["tasks"][0]["tensors"][0]["rel"] = "huge";
    EXPECT_FALSE(report_from_json(forged));
}

// Applies a submission onto a fresh scratch copy of the pristine tree; returns the problems.
std::string apply_to_scratch(const std::string& path, const TempDir& scratch_root) {
    Result<Submission> sub = classify_submission(path);
    if (!sub) return sub.error();
    const std::string scratch = scratch_root.path + "/src";
    Status copied = copy_pristine_tree(testing::project_root(), scratch);
    EXPECT_TRUE(copied) << copied.error();
    std::string out;
    for (const std::string& p :
         apply_submission(*sub, testing::project_root(), scratch, SandboxMode::none))
        out += p + "\n";
    return out;
}

TEST(AgentLoop, ASubmissionThatChangesNothingIsRefusedInEachForm) {
    const std::string nothing = "the submission changes nothing: ";
    {  // an empty overlay directory, and one holding only empty folders
        TempDir overlay, scratch, scratch2;
        EXPECT_NE(apply_to_scratch(overlay.path, scratch).find(nothing + "the overlay"),
                  std::string::npos);
        fs::create_directories(overlay.path + "/kernels/sub");
        EXPECT_NE(apply_to_scratch(overlay.path, scratch2).find(nothing), std::string::npos);
    }
    {  // an overlay whose file is the pristine one
        TempDir overlay, scratch;
        write_text(overlay.path + "/kernels/submission.cpp",
                   testing::read_text(testing::project_root() + "/kernels/submission.cpp"));
        EXPECT_NE(apply_to_scratch(overlay.path, scratch).find(nothing), std::string::npos);
    }
    {  // an empty patch, and one of blanks only
        TempDir dir, scratch, scratch2;
        write_text(dir.path + "/empty.patch", "");
        EXPECT_EQ(apply_to_scratch(dir.path + "/empty.patch", scratch),
                  nothing + "the patch is empty\n");
        write_text(dir.path + "/blank.patch", "\n  \n\t\n");
        EXPECT_EQ(apply_to_scratch(dir.path + "/blank.patch", scratch2),
                  nothing + "the patch is empty\n");
    }
    {  // a workspace identical to the pristine tree, build output and all
        TempDir ws, scratch, scratch2;
        ASSERT_TRUE(copy_pristine_tree(testing::project_root(), ws.path));
        write_text(ws.path + "/" + kWorkspaceMarker, "x");
        write_text(ws.path + "/TASK.md", "notes");
        fs::create_directories(ws.path + "/build/junk");
        EXPECT_NE(apply_to_scratch(ws.path, scratch).find(nothing + "the workspace's"),
                  std::string::npos);
        // one byte changed is a change
        const std::string file = ws.path + "/baseline/train.cpp";
        write_text(file, testing::read_text(file) + "\n");
        EXPECT_EQ(apply_to_scratch(ws.path, scratch2), "");
    }
    {  // a refusal for another reason is not hidden behind "changes nothing"
        TempDir overlay, scratch;
        fs::create_directories(overlay.path + "/kernels");
        fs::create_symlink(testing::project_root() + "/kernels/submission.cpp",
                           overlay.path + "/kernels/submission.cpp");
        const std::string problems = apply_to_scratch(overlay.path, scratch);
        EXPECT_NE(problems.find("symlinks are not accepted"), std::string::npos) << problems;
        EXPECT_EQ(problems.find(nothing), std::string::npos) << problems;
    }
}

TEST(AgentLoop, AnUnknownCommandIsAUsageErrorNamingTheCommands) {
    TempDir dir;
    auto r = testing::run_cli({"frobnicate", "x"}, dir.path + "/a");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("unknown command 'frobnicate'; commands: score, verify,"),
              std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("A subcommand is required"), std::string::npos) << r.output;
    r = testing::run_cli({"workspace", "frob"}, dir.path + "/b");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("unknown command 'workspace frob'; workspace commands: init"),
              std::string::npos)
        << r.output;
    // a hostile word is shown inert
    r = testing::run_cli({"evil\x1b[2J\nVALID"}, dir.path + "/c");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_FALSE(has_control(r.output)) << r.output;
    // known commands still parse; `history DB` is a database, not a command
    EXPECT_EQ(testing::run_cli({"tasks", "list", "--suite", "test"}, dir.path + "/d").exit_code, 0);
    r = testing::run_cli({"history"}, dir.path + "/e");
    EXPECT_EQ(r.output.find("unknown command"), std::string::npos) << r.output;
}

TEST(AgentLoop, TrainersRunWithPassiveOpenMpThreads) {
    const std::vector<std::string> env = trainer_environment();
    EXPECT_NE(std::find(env.begin(), env.end(), "OMP_WAIT_POLICY=PASSIVE"), env.end());
    // builds and other sandboxed steps keep the plain environment
    const std::vector<std::string> plain = sandbox_environment();
    EXPECT_EQ(std::find(plain.begin(), plain.end(), "OMP_WAIT_POLICY=PASSIVE"), plain.end());
    SandboxSpec spec;
    spec.command = {"/bin/true"};
    spec.env = env;
    const std::vector<std::string> argv = sandbox_argv(spec);
    bool set = false;
    for (size_t i = 0; i + 2 < argv.size(); i++)
        set = set || (argv[i] == "--setenv" && argv[i + 1] == "OMP_WAIT_POLICY" &&
                      argv[i + 2] == "PASSIVE");
    EXPECT_TRUE(set);
}

TEST(AgentLoop, TheWorkspaceNamesTheTrainoptThatMadeIt) {
    TempDir dir;
    auto r = testing::run_cli({"workspace", "init", dir.path + "/ws"}, dir.path + "/log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string exe = fs::canonical(TRAINOPT_CLI).string();
    const std::string task = testing::read_text(dir.path + "/ws/TASK.md");
    EXPECT_EQ(task.find(kTrainoptPlaceholder), std::string::npos) << task;
    EXPECT_NE(task.find(exe + " verify ."), std::string::npos) << task;
    EXPECT_NE(task.find(exe + " score ."), std::string::npos) << task;
    EXPECT_NE(task.find("perf record -e cpu-clock"), std::string::npos) << task;
    EXPECT_NE(task.find("advisory"), std::string::npos) << task;
    EXPECT_NE(r.output.find(exe + " verify"), std::string::npos) << r.output;
    // a path a shell would split is quoted
    const char* text = "run @TRAINOPT@ .";
    const EmbeddedFile doc{"TASK.md", reinterpret_cast<const unsigned char*>(text), strlen(text)};
    EXPECT_EQ(workspace_document_text(doc, "'/a b/trainopt'"), "run '/a b/trainopt' .");
}

}  // namespace
}  // namespace trainopt
