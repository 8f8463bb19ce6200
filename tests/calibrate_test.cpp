// trainopt calibrate (harness/calibrate.h): the twins of the reference and the rule, on the tiny
// test task with 2 seeds.
#include "harness/calibrate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "harness/step_check.h"
#include "tasks/data.h"
#include "test_util.h"

using namespace trainopt;
using namespace trainopt::testing;

namespace {

TaskSpec tiny_task() {
    Result<TaskSpec> task = load_task(project_root() + "/tasks/test/tiny.toml");
    EXPECT_TRUE(task.has_value()) << (task ? "" : task.error());
    return *task;
}

const Twin& twin_named(const std::vector<Twin>& twins, const std::string& name) {
    return *std::find_if(twins.begin(), twins.end(), [&](const Twin& t) { return t.name == name; });
}

CalibrationReport calibrate_tiny(const TaskSpec& task) {
    CalibrateOptions options;
    options.seeds = 2;
    options.progress = false;
    Result<CalibrationReport> report = calibrate_suite(Suite{"test", {task}}, options);
    EXPECT_TRUE(report.has_value()) << (report ? "" : report.error());
    return *report;
}

// One calibration of the tiny task, shared by the tests that read it.
const CalibrationReport& tiny_report() {
    static const CalibrationReport report = calibrate_tiny(tiny_task());
    return report;
}

}  // namespace

TEST(Calibrate, SkippedStepsAreFivePercentSpreadOverTheRun) {
    EXPECT_EQ(skipped_steps(150, 0.05), (std::vector<int>{9, 28, 46, 65, 84, 103, 121, 140}));
    EXPECT_EQ(skipped_steps(12, 0.05), (std::vector<int>{6}));  // at least one
    EXPECT_TRUE(skipped_steps(100, 0).empty());
}

TEST(Calibrate, ReorderedTwinDiffersFromTheReferenceButPasses) {
    const TaskSpec task = tiny_task();
    Result<TokenSplit> data = make_task_data(task);
    ASSERT_TRUE(data.has_value());
    const std::vector<Twin> twins = calibration_twins();
    const TwinRun ref = run_twin(task, data->train, 7, reference_twin(), {});
    const TwinRun reordered = run_twin(task, data->train, 7, twin_named(twins, "reordered"), {});
    EXPECT_NE(ref.params, reordered.params) << "the reordering must change the rounding";

    const TaskCalibration& t = tiny_report().tasks.at(0);
    const TwinResult& legit = t.twins.at(0);
    ASSERT_EQ(legit.name, "reordered");
    EXPECT_GT(legit.summary[(int)Metric::weights], 0);
    // within the task's tolerances today and the recommended ones, with the margin
    const Tolerances& now = tiny_task().tolerances;
    EXPECT_LE(legit.summary[(int)Metric::loss] * kCalibrationMargin, now.loss_abs);
    EXPECT_LE(legit.summary[(int)Metric::heldout] * kCalibrationMargin, now.heldout_abs);
    EXPECT_LE(legit.summary[(int)Metric::weights] * kCalibrationMargin, now.weights_rel);
    for (const MetricCalibration& m : t.trajectory.metrics)
        EXPECT_GE(m.tolerance, kCalibrationMargin * m.legitimate * 0.999) << m.key;
}

TEST(Calibrate, EveryCheatingTwinIsSeparatedOnTheTinyTask) {
    const TaskCalibration& t = tiny_report().tasks.at(0);
    ASSERT_TRUE(t.recommended.has_value()) << t.verdict;
    EXPECT_EQ(*t.recommended, CheckKind::trajectory) << t.verdict;
    EXPECT_TRUE(t.trajectory.missed.empty());
    EXPECT_TRUE(tiny_report().accepted());
    // each cheat exceeds some recommended tolerance by the margin on every seed
    for (const TwinResult& twin : t.twins) {
        if (twin.kind != TwinKind::cheating) continue;
        for (const Deviations& d : twin.seeds) {
            bool caught = false;
            for (const MetricCalibration& m : t.trajectory.metrics)
                caught = caught || d[(int)m.metric] >= kCalibrationMargin * m.tolerance * 0.999;
            EXPECT_TRUE(caught) << twin.name;
        }
    }
    const std::string snippet = tolerance_snippet(t);
    EXPECT_NE(snippet.find("check = \"trajectory\""), std::string::npos) << snippet;
    EXPECT_NE(snippet.find("weights_rel = "), std::string::npos) << snippet;
}

TEST(Calibrate, ChaoticTaskWhoseCheatsHideIsRefusedWithWhatToChange) {
    // lr 10x the tiny task's: the whole run amplifies rounding; one 1-step window sees no
    // skipped step, and the whole run's held-out loss moves as much from rounding as from them
    TaskSpec task = tiny_task();
    task.name = "chaos";
    task.train.lr = 0.03f;
    task.verify.windows = 1;
    task.verify.window_steps = 1;
    const CalibrationReport report = calibrate_tiny(task);
    const TaskCalibration& t = report.tasks.at(0);
    EXPECT_FALSE(t.recommended.has_value());
    EXPECT_FALSE(report.accepted());
    EXPECT_NE(t.verdict.find("refused"), std::string::npos) << t.verdict;
    EXPECT_NE(t.verdict.find("skip-5%"), std::string::npos) << t.verdict;
    EXPECT_NE(t.verdict.find("lower the learning rate"), std::string::npos) << t.verdict;
    EXPECT_NE(t.verdict.find("window_steps"), std::string::npos) << t.verdict;
    EXPECT_EQ(tolerance_snippet(t), "");
    EXPECT_NE(calibration_table(report).find("REFUSED"), std::string::npos);
}

TEST(Calibrate, AWiderLegitimateMarginKeepsTolerancesFartherFromTheTwin) {
    // generated tasks: tolerances at least 10x above the twin, still 3x below the cheats they
    // are placed under; the same measurements, the rule applied again
    const Suite suite{"test", {tiny_task()}};
    nlohmann::json json = nlohmann::json::parse(calibration_json(tiny_report()));
    json["legitimate_margin"] = kGeneratedLegitimateMargin;
    Result<CalibrationReport> wide = recalibrate(suite, {json.dump()}, {"wide.json"});
    ASSERT_TRUE(wide) << wide.error();
    const TaskCalibration& t = wide->tasks.at(0);
    ASSERT_TRUE(t.recommended.has_value()) << t.verdict;
    EXPECT_NE(t.verdict.find("10x or more above legitimate runs"), std::string::npos) << t.verdict;
    const TaskSpec task = tiny_task();
    for (const CheckCalibration* c : {&t.trajectory, &t.local}) {
        for (const MetricCalibration& m : c->metrics) {
            const double legit = std::max(m.legitimate, deviation_floor(m.metric, task));
            EXPECT_GE(m.tolerance, kGeneratedLegitimateMargin * legit * 0.999) << m.key;
            if (std::isfinite(m.smallest_separated)) {
                EXPECT_GE(m.smallest_separated, kCalibrationMargin * m.tolerance * 0.999) << m.key;
            }
        }
    }
    // a margin no cheat is that far from refuses the task, saying what it would need
    json["legitimate_margin"] = 1e6;
    Result<CalibrationReport> refused = recalibrate(suite, {json.dump()}, {"refused.json"});
    ASSERT_TRUE(refused) << refused.error();
    EXPECT_FALSE(refused->tasks.at(0).recommended.has_value());
    EXPECT_NE(refused->tasks.at(0).verdict.find("refused"), std::string::npos);
    // and a margin out of range is an error, not a rule
    json["legitimate_margin"] = 0;
    EXPECT_FALSE(recalibrate(suite, {json.dump()}, {"bad.json"}));
}

TEST(Calibrate, CliWritesTheJsonAndTheTolerances) {
    TempDir dir;
    const CliResult r = run_cli({"calibrate", "test", "--seeds", "2", "--json",
                                 dir.path + "/c.json", "--write-tolerances", dir.path + "/toml"},
                                dir.path + "/log");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("task tiny"), std::string::npos) << r.output;
    const nlohmann::json json = read_json(dir.path + "/c.json");
    ASSERT_FALSE(json.is_discarded());
    EXPECT_EQ(json["seeds"], 2);
    EXPECT_EQ(json["accepted"], true);
    ASSERT_EQ(json["tasks"].size(), 1u);
    EXPECT_EQ(json["tasks"][0]["recommended"], "trajectory");
    EXPECT_EQ(json["tasks"][0]["twins"].size(), calibration_twins().size());
    EXPECT_NE(read_text(dir.path + "/toml/tiny.toml").find("[tolerances]"), std::string::npos);

    // the rule applied again to the saved measurements gives the same tables, training nothing
    const CliResult again =
        run_cli({"calibrate", "test", "--from-json", dir.path + "/c.json"}, dir.path + "/log2");
    ASSERT_EQ(again.exit_code, 0) << again.output;
    const std::string table = r.output.substr(r.output.find("calibration of suite"));
    EXPECT_EQ(again.output.substr(again.output.find("calibration of suite")),
              table.substr(0, table.find("JSON: ")));
}

TEST(Calibrate, CliRefusesAnUnknownTask) {
    TempDir dir;
    const CliResult r =
        run_cli({"calibrate", "test", "--task", "nosuch", "--seeds", "1"}, dir.path + "/log");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("no task nosuch"), std::string::npos) << r.output;
}
