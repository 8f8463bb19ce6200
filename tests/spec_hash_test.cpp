// Task spec and suite hashes (scoring/spec_hash.h), in reports and in the refusal of `trainopt
// compare` and `ci --against` to pair reports of different suites or task specs.
#include "scoring/spec_hash.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "harness/compare_command.h"
#include "scoring/compare.h"
#include "scoring/report.h"
#include "test_util.h"

namespace trainopt {
namespace {

using testing::TempDir;
using testing::write_text;

size_t occurrences(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
    return n;
}

const char* kTaskFile = R"(
[task]
name = "t"
description = "a task"
hot_spot = "matmul"
[model]
vocab_size = 32
context = 8
d_model = 8
layers = 1
heads = 2
[data]
kind = "synthetic"
tokens = 5000
[train]
batch = 2
steps = 3
lr = 1e-3
)";

TaskSpec sample_task() {
    TempDir dir;
    write_text(dir.path + "/t.toml", kTaskFile);
    Result<TaskSpec> task = load_task(dir.path + "/t.toml");
    EXPECT_TRUE(task) << task.error();
    return task ? *task : TaskSpec{};
}

TEST(SpecHash, IsStableAcrossLoadsAndLocationsAndPinned) {
    const TaskSpec a = sample_task();
    const TaskSpec b = sample_task();  // from another temporary directory
    ASSERT_NE(a.file, b.file);
    EXPECT_EQ(task_spec_hash(a), task_spec_hash(b));
    EXPECT_TRUE(is_sha256_hex(task_spec_hash(a)));
    // reports written today are compared with reports written later: a change of the canonical
    // form must be deliberate (with a new format tag), so this spec's form and hash are pinned
    EXPECT_EQ(canonical_task_spec(a),
              R"({"data":{"branching":4,"data_seed":1,"heldout_fraction":0.1,"kind":"synthetic",)"
              R"("order":1,"tokens":5000},"eval":{"batches":4},"format":"trainopt-task-spec/1",)"
              R"("model":{"context":8,"d_model":8,"heads":2,"layers":1,"vocab_size":32},)"
              R"("tolerances":{"heldout_abs":5e-05,"heldout_band":0.05,"loss_abs":0.0001,)"
              R"("step_loss_abs":1e-05,"step_state_rel":0.001,"weights_rel":0.001},)"
              R"("train":{"batch":2,"beta1":0.8999999761581421,"beta2":0.9990000128746033,)"
              R"("eps":9.99999993922529e-09,"lr":0.0010000000474974513,"steps":3,)"
              R"("weight_decay":0.0},"verify":{"check":"trajectory","window_steps":4,)"
              R"("windows":4}})");
    EXPECT_EQ(task_spec_hash(a),
              "1f37243c4c58f63b0c5bb9af7f72c3ca76d6a5b76c79183915040035e418a004");
}

TEST(SpecHash, LabelsDoNotCount) {
    const TaskSpec a = sample_task();
    TaskSpec b = a;
    b.name = "renamed";
    b.description = "other words";
    b.hot_spot = "attention";
    b.file = "/elsewhere/t.toml";
    EXPECT_EQ(task_spec_hash(a), task_spec_hash(b));
}

// Every field that affects training or verification changes the hash.
TEST(SpecHash, EveryTrainingAndVerificationFieldCounts) {
    const TaskSpec base = sample_task();
    const std::vector<std::pair<const char*, std::function<void(TaskSpec&)>>> changes = {
        {"vocab_size", [](TaskSpec& t) { t.model.vocab_size++; }},
        {"context", [](TaskSpec& t) { t.model.context++; }},
        {"d_model", [](TaskSpec& t) { t.model.d_model++; }},
        {"layers", [](TaskSpec& t) { t.model.layers++; }},
        {"heads", [](TaskSpec& t) { t.model.heads++; }},
        {"order", [](TaskSpec& t) { t.data.order = 2; }},
        {"branching", [](TaskSpec& t) { t.data.branching++; }},
        {"tokens", [](TaskSpec& t) { t.data.tokens++; }},
        {"data_seed", [](TaskSpec& t) { t.data.data_seed++; }},
        {"heldout_fraction", [](TaskSpec& t) { t.data.heldout_fraction = 0.2; }},
        {"batch", [](TaskSpec& t) { t.train.batch++; }},
        {"steps", [](TaskSpec& t) { t.train.steps++; }},
        {"lr", [](TaskSpec& t) { t.train.lr = std::nextafter(t.train.lr, 1.0f); }},
        {"beta1", [](TaskSpec& t) { t.train.beta1 = 0.8f; }},
        {"beta2", [](TaskSpec& t) { t.train.beta2 = 0.99f; }},
        {"eps", [](TaskSpec& t) { t.train.eps = 1e-6f; }},
        {"weight_decay", [](TaskSpec& t) { t.train.weight_decay = 0.1f; }},
        {"eval_batches", [](TaskSpec& t) { t.eval_batches++; }},
        {"loss_abs", [](TaskSpec& t) { t.tolerances.loss_abs *= 2; }},
        {"heldout_abs", [](TaskSpec& t) { t.tolerances.heldout_abs *= 2; }},
        {"weights_rel", [](TaskSpec& t) { t.tolerances.weights_rel *= 2; }},
        {"step_loss_abs", [](TaskSpec& t) { t.tolerances.step_loss_abs *= 2; }},
        {"step_state_rel", [](TaskSpec& t) { t.tolerances.step_state_rel *= 2; }},
        {"heldout_band", [](TaskSpec& t) { t.tolerances.heldout_band *= 2; }},
        {"check", [](TaskSpec& t) { t.verify.check = CheckKind::local; }},
        {"windows", [](TaskSpec& t) { t.verify.windows++; }},
        {"window_steps", [](TaskSpec& t) { t.verify.window_steps++; }},
    };
    std::set<std::string> seen = {task_spec_hash(base)};
    for (const auto& [field, change] : changes) {
        TaskSpec t = base;
        change(t);
        EXPECT_TRUE(seen.insert(task_spec_hash(t)).second) << field << " does not count";
    }
}

TEST(SpecHash, TextDataCountsByItsPinOrItsFiles) {
    TaskSpec t = sample_task();
    t.data.kind = "text";
    t.data.paths = {"/a/corpus.txt"};
    const std::string unpinned = task_spec_hash(t);
    t.data.paths = {"/b/corpus.txt"};  // the same file name elsewhere: the same data
    EXPECT_EQ(task_spec_hash(t), unpinned);
    t.data.paths = {"/a/other.txt"};
    EXPECT_NE(task_spec_hash(t), unpinned);
    t.data.sha256 = std::string(64, 'a');
    const std::string pinned = task_spec_hash(t);
    t.data.paths = {"/c/renamed.txt"};  // a pinned text is its bytes, whatever the file's name
    EXPECT_EQ(task_spec_hash(t), pinned);
    t.data.sha256 = std::string(64, 'b');
    EXPECT_NE(task_spec_hash(t), pinned);
}

TEST(SpecHash, SuiteHashIsOrderFreeAndSensitive) {
    const std::string h1 = std::string(64, '1'), h2 = std::string(64, '2');
    const std::string suite = suite_hash({{"a", h1}, {"b", h2}});
    EXPECT_TRUE(is_sha256_hex(suite));
    EXPECT_EQ(suite_hash({{"b", h2}, {"a", h1}}), suite);
    EXPECT_NE(suite_hash({{"a", h2}, {"b", h1}}), suite);  // the spec moved to another task
    EXPECT_NE(suite_hash({{"a", h1}}), suite);
    EXPECT_NE(suite_hash({{"a", h1}, {"c", h2}}), suite);
    EXPECT_EQ(suite_hash({{"a", h1}, {"b", kUnknownHash}}), kUnknownHash);
    EXPECT_FALSE(is_sha256_hex(std::string(64, 'A')));
    EXPECT_FALSE(is_sha256_hex(kUnknownHash));
}

// ---- in reports ----

// A complete VALID report of tasks "x" and "y" with the given spec hashes.
ScoreReport report_of(const std::string& x_hash, const std::string& y_hash, double scale = 1) {
    ScoreReport r;
    r.created_at = "2026-12-01T00:00:00Z";
    r.submission = "subs/s";
    r.submission_kind = "overlay";
    r.suite = "test";
    r.sandbox = "bubblewrap";
    r.machine = {"host", "CPU", 2};
    r.reps = 5;
    r.complete = true;
    for (const auto& [name, hash] : {std::pair{"x", x_hash}, {"y", y_hash}}) {
        TaskReport t;
        t.name = name;
        t.spec_hash = hash;
        t.baseline_seconds = {10, 10.2, 9.9, 10.1, 9.8};
        t.submission_seconds = {1 * scale, 1.01 * scale, 0.99 * scale, 1.02 * scale, 0.98 * scale};
        t.steps = 1;
        t.step_gflop = 0;
        t.baseline_kernel_seconds = {};
        t.submission_kernel_seconds = {};
        r.tasks.push_back(t);
    }
    finalize_report(r);
    return r;
}

const std::string kX(64, 'a'), kY(64, 'b'), kZ(64, 'c');

TEST(SpecHash, ReportsCarryTheHashesThroughJson) {
    ScoreReport r = report_of(kX, kY);
    EXPECT_EQ(r.suite_hash, suite_hash({{"x", kX}, {"y", kY}}));
    Result<ScoreReport> back = report_from_json(report_to_json(r));
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(back->suite_hash, r.suite_hash);
    EXPECT_EQ(back->tasks[1].spec_hash, kY);
    EXPECT_EQ(back->machine.key(), "host / CPU / 2 cores");
    // an edited suite hash is recomputed from the tasks, like the speedups
    nlohmann::json j = report_to_json(r);
    j["suite_hash"] = std::string(64, 'f');
    back = report_from_json(j);
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(back->suite_hash, r.suite_hash);
    // a hash that is neither a SHA-256 nor "unknown" is a damaged report
    j["tasks"][0]["spec_hash"] = "<script>";
    back = report_from_json(j);
    ASSERT_FALSE(back);
    EXPECT_NE(back.error().find("spec_hash"), std::string::npos) << back.error();
}

TEST(SpecHash, ReportsFromBeforeTheFieldsLoadAsUnknown) {
    nlohmann::json j = report_to_json(report_of(kX, kY));
    j.erase("suite_hash");
    j["machine"].erase("identity");
    for (auto& t : j["tasks"]) t.erase("spec_hash");
    Result<ScoreReport> old = report_from_json(j);
    ASSERT_TRUE(old) << old.error();
    EXPECT_EQ(old->suite_hash, kUnknownHash);
    EXPECT_EQ(old->tasks[0].spec_hash, kUnknownHash);
    EXPECT_EQ(old->machine.key(), kUnknownHash);
    EXPECT_EQ(old->verdict, Verdict::valid);
}

// ---- comparability ----

std::string problems_of(const ScoreReport& a, const ScoreReport& b) {
    std::string out;
    for (const std::string& p : comparability_problems({"A", &a}, {"B", &b})) out += p + "\n";
    return out;
}

TEST(Compare, SameSuiteAndSpecsAreComparable) {
    EXPECT_EQ(problems_of(report_of(kX, kY), report_of(kX, kY, 2)), "");
}

TEST(Compare, RefusesADifferentTaskSpecNamingTheTask) {
    const std::string problems = problems_of(report_of(kX, kY), report_of(kX, kZ));
    EXPECT_NE(problems.find("the suites differ"), std::string::npos) << problems;
    EXPECT_NE(problems.find("task y has another spec: hash bbbbbbbbbbbb in A, cccccccccccc in B"),
              std::string::npos)
        << problems;
    EXPECT_EQ(problems.find("task x"), std::string::npos) << problems;
}

TEST(Compare, RefusesAMissingTaskNamingIt) {
    ScoreReport b = report_of(kX, kY);
    b.tasks.pop_back();
    finalize_report(b);
    const std::string problems = problems_of(report_of(kX, kY), b);
    EXPECT_NE(problems.find("task y is in A but missing from B"), std::string::npos) << problems;
}

TEST(Compare, RefusesUnknownHashesAndReportsThatAreNotValid) {
    std::string problems = problems_of(report_of(kUnknownHash, kUnknownHash), report_of(kX, kY));
    EXPECT_NE(problems.find("A records no suite hash"), std::string::npos) << problems;
    ScoreReport invalid = report_of(kX, kY);
    invalid.tasks[0].valid = false;
    finalize_report(invalid);
    problems = problems_of(report_of(kX, kY), invalid);
    EXPECT_NE(problems.find("B is INVALID"), std::string::npos) << problems;
    ScoreReport incomplete = report_of(kX, kY);
    incomplete.complete = false;
    finalize_report(incomplete);
    problems = problems_of(incomplete, report_of(kX, kY));
    EXPECT_NE(problems.find("A is INCOMPLETE"), std::string::npos) << problems;
}

TEST(Compare, CiAgainstAppliesTheSameRefusal) {
    Status ok = check_comparable(report_of(kX, kY), "prev.json", report_of(kX, kY, 1.5));
    EXPECT_TRUE(ok) << ok.error();
    Status refused = check_comparable(report_of(kX, kY), "prev.json", report_of(kZ, kY));
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().find("the previous report (prev.json) and this run cannot be "
                                   "compared"),
              std::string::npos)
        << refused.error();
    EXPECT_NE(refused.error().find("task x has another spec"), std::string::npos);
}

// ---- trainopt compare on the command line: exit codes and outputs ----

void save(const ScoreReport& r, const std::string& path) {
    write_text(path, report_to_json(r).dump(2));
}

TEST(Compare, CommandLineExitCodesAndOutputs) {
    TempDir dir;
    const std::string a = dir.path + "/a.json", same = dir.path + "/same.json",
                      slow = dir.path + "/slow.json", other = dir.path + "/other.json",
                      invalid = dir.path + "/invalid.json", broken = dir.path + "/broken.json";
    save(report_of(kX, kY), a);
    save(report_of(kX, kY, 1.01), same);
    save(report_of(kX, kY, 2.0), slow);
    save(report_of(kX, kZ), other);
    ScoreReport bad = report_of(kX, kY);
    bad.tasks[1].valid = false;
    finalize_report(bad);
    save(bad, invalid);
    write_text(broken, "{\"schema_version\": 1, \"tasks\": [");

    testing::CliResult r = testing::run_cli(
        {"compare", a, same, "--md", dir.path + "/c.md", "--json", dir.path + "/c.json"},
        dir.path + "/log1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("no significant regression"), std::string::npos) << r.output;
    const nlohmann::json j = testing::read_json(dir.path + "/c.json");
    ASSERT_FALSE(j.is_discarded());
    EXPECT_EQ(j["regression"], false);
    EXPECT_EQ(j["tasks"].size(), 2u);
    EXPECT_EQ(j["tasks"][1]["spec_hash"], kY);
    EXPECT_NE(testing::read_text(dir.path + "/c.md").find("| x |"), std::string::npos);

    r = testing::run_cli({"compare", a, slow}, dir.path + "/log2");
    EXPECT_EQ(r.exit_code, 4) << r.output;
    EXPECT_NE(r.output.find("SIGNIFICANT REGRESSION"), std::string::npos) << r.output;

    r = testing::run_cli({"compare", a, other}, dir.path + "/log3");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("task y has another spec"), std::string::npos) << r.output;

    r = testing::run_cli({"compare", a, invalid}, dir.path + "/log4");
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("is INVALID"), std::string::npos) << r.output;

    r = testing::run_cli({"compare", broken, a}, dir.path + "/log5");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("not valid JSON"), std::string::npos) << r.output;

    r = testing::run_cli({"compare", a}, dir.path + "/log6");  // B missing: a usage error
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = testing::run_cli({"compare", a, same, "--max-slowdown", "-1"}, dir.path + "/log7");
    EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Compare, HostileStringsAreEscapedInTheMarkdown) {
    ScoreReport a = report_of(kX, kY), b = report_of(kX, kY);
    for (ScoreReport* r : {&a, &b}) {
        r->submission = "`x` <script>alert(1)</script>\x1b[2J";
        r->suite = "| forged | row |\n# heading";
        r->tasks[0].name = "<img src=x>|";
    }
    finalize_report(a);
    finalize_report(b);
    ReportComparison c{{"A", &a}, {"B", &b}, 0.1, compare_reports(a, b, 0.1)};
    const std::string md = comparison_to_markdown(c);
    // the submission in a code span (inert, its fence longer than the backticks inside), every
    // other string backslash-escaped
    EXPECT_NE(md.find("submission `` `x` <script>alert(1)</script> ``"), std::string::npos) << md;
    EXPECT_EQ(occurrences(md, "<script>"), 2u) << md;  // A's and B's code spans only
    EXPECT_EQ(md.find('\x1b'), std::string::npos);
    EXPECT_EQ(md.find("\n# heading"), std::string::npos) << md;
    EXPECT_NE(md.find("| \\<img src=x\\>\\| |"), std::string::npos) << md;
    EXPECT_EQ(md.find("| <img"), std::string::npos) << md;
}

}  // namespace
}  // namespace trainopt
