// Generated suites: the draw is a function of (seed, task, attempt) within the ranges, a drawn
// task's file loads back to the same task, suite names parse strictly, and the generator sizes
// tasks to the target time and redraws what does not fit.
#include "tasks/generator.h"

#include <gtest/gtest.h>

#include "harness/suite_generator.h"
#include "test_util.h"

namespace trainopt {
namespace {

TEST(Generator, DrawsAreDeterministicAndWithinTheRanges) {
    const GeneratorRanges ranges;
    for (uint64_t seed : {1ull, 2ull, 12345678901ull}) {
        for (int index = 0; index < 16; index++) {
            const DrawnTask a = draw_task(seed, index, 0, ranges);
            const DrawnTask b = draw_task(seed, index, 0, ranges);
            EXPECT_EQ(generated_task_toml(a, 10, VerifySpec{}, Tolerances{}, "x"),
                      generated_task_toml(b, 10, VerifySpec{}, Tolerances{}, "x"));
            EXPECT_GE(a.model.vocab_size, ranges.vocab_size.low);
            EXPECT_LE(a.model.vocab_size, ranges.vocab_size.high);
            EXPECT_GE(a.model.context, ranges.context.low);
            EXPECT_LE(a.model.context, ranges.context.high);
            EXPECT_GE(a.model.d_model, ranges.d_model.low);
            EXPECT_LE(a.model.d_model, ranges.d_model.high);
            EXPECT_EQ(a.model.d_model % a.model.heads, 0);
            EXPECT_GE(a.model.layers, ranges.layers.low);
            EXPECT_LE(a.model.layers, ranges.layers.high);
            EXPECT_GE(a.batch, ranges.batch.low);
            EXPECT_LE(a.batch, ranges.batch.high);
        }
        EXPECT_NE(generated_task_toml(draw_task(seed, 0, 0, ranges), 10, {}, {}, ""),
                  generated_task_toml(draw_task(seed, 0, 1, ranges), 10, {}, {}, ""));
    }
}

TEST(Generator, ATaskFileLoadsBackToTheDrawnTask) {
    const DrawnTask drawn = draw_task(7, 3, 0, GeneratorRanges{});
    VerifySpec verify;
    verify.check = CheckKind::local;
    Tolerances tol;
    tol.step_loss_abs = 2e-5;
    auto task = load_task_text(generated_task_toml(drawn, 123, verify, tol, "test"), "gen-3.toml");
    ASSERT_TRUE(task) << task.error();
    EXPECT_EQ(task->name, "gen-3");
    EXPECT_EQ(task->train.steps, 123);
    EXPECT_EQ(task->model.vocab_size, drawn.model.vocab_size);
    EXPECT_EQ(task->model.d_model, drawn.model.d_model);
    EXPECT_EQ(task->data.data_seed, drawn.data.data_seed);
    EXPECT_EQ(task->verify.check, CheckKind::local);
    EXPECT_DOUBLE_EQ(task->tolerances.step_loss_abs, 2e-5);
}

TEST(Generator, ExportWritesTheReportsTaskFilesAndRefusesForgedOnes) {
    const DrawnTask drawn = draw_task(11, 0, 0, GeneratorRanges{});
    ScoreReport report;
    report.generated_suite = "generated:11:1";
    report.generated_tasks = {{"gen-0", generated_task_toml(drawn, 50, {}, {}, "test")}};
    testing::TempDir tmp;
    const std::string dir = tmp.path + "/suite";
    Result<int> written = export_generated_tasks(report, dir);
    ASSERT_TRUE(written) << written.error();
    EXPECT_EQ(*written, 1);
    Result<TaskSpec> back = load_task(dir + "/gen-0.toml");
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(back->train.steps, 50);
    EXPECT_FALSE(export_generated_tasks(report, dir));  // not empty any more

    for (const char* name : {"../x", "gen-", "gen-0/../../y", "small", "gen-1"}) {
        ScoreReport forged = report;
        forged.generated_tasks[0].name = name;  // gen-1: the file says gen-0
        EXPECT_FALSE(export_generated_tasks(forged, tmp.path + "/forged")) << name;
    }
    ScoreReport none;
    EXPECT_FALSE(export_generated_tasks(none, tmp.path + "/none"));
}

TEST(Generator, SuiteNamesParseStrictly) {
    auto a = parse_generated_suite_name("generated:42");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->seed, 42u);
    EXPECT_EQ(a->tasks, kDefaultGeneratedTasks);
    auto b = parse_generated_suite_name("generated:42:3");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->tasks, 3);
    EXPECT_EQ(generated_suite_name(*b), "generated:42:3");
    for (const char* bad : {"generated:", "generated:x", "generated:-1", "generated:1:0",
                            "generated:1:65", "generated:1:2:3", "generated:1:", "default"}) {
        EXPECT_FALSE(parse_generated_suite_name(bad)) << bad;
    }
}

TEST(Generator, SizesTasksToTheTargetAndRedrawsWhatDoesNotFit) {
    testing::TempDir dir;
    GenerateOptions options;
    options.name = {5, 3};
    options.ranges.context = {8, 32};
    options.ranges.d_model = {16, 64};
    options.ranges.vocab_size = {32, 512};
    options.ranges.target_seconds = 0.2;
    options.ranges.steps = {4, 400};
    options.calibration_seeds = 0;
    options.out_dir = dir.path + "/suite";
    auto suite = generate_suite(options);
    ASSERT_TRUE(suite) << suite.error();
    ASSERT_EQ(suite->suite.tasks.size(), 3u);
    EXPECT_EQ(suite->suite.name, "generated:5:3");
    for (const TaskSpec& t : suite->suite.tasks) {
        EXPECT_GE(t.train.steps, 4);
        EXPECT_LE(t.train.steps, 400);
        auto reloaded = load_task(t.file);  // written where the trainers read it
        ASSERT_TRUE(reloaded) << reloaded.error();
        EXPECT_EQ(reloaded->train.steps, t.train.steps);
    }
    // a target no draw fits: every task is redrawn until the attempts run out
    options.ranges.target_seconds = 1e-9;
    options.max_attempts = 2;
    auto none = generate_suite(options);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().find("could not be drawn verifiable in 2 draws"), std::string::npos)
        << none.error();
}

TEST(Generator, ALongRunIsCheckedLocallyWithTolerancesFarFromTheTwin) {
    // tiny shapes, sized to more than kGeneratedTrajectoryMaxSteps: calibrated with the wider
    // legitimate margin, checked local whatever calibration recommends
    testing::TempDir dir;
    GenerateOptions options;
    options.name = {9, 1};
    options.ranges.context = {8, 16};
    options.ranges.d_model = {16, 32};
    options.ranges.head_sizes = {8};
    options.ranges.layers = {1, 1};
    options.ranges.vocab_size = {32, 64};
    options.ranges.batch = {1, 2};
    options.ranges.target_seconds = 1e9;  // as many steps as the range allows
    options.ranges.steps = {kGeneratedTrajectoryMaxSteps + 1, kGeneratedTrajectoryMaxSteps + 100};
    options.calibration_seeds = 1;
    options.out_dir = dir.path + "/suite";
    auto suite = generate_suite(options);
    ASSERT_TRUE(suite) << suite.error();
    const TaskSpec& task = suite->suite.tasks.at(0);
    EXPECT_GT(task.train.steps, kGeneratedTrajectoryMaxSteps);
    EXPECT_EQ(task.verify.check, CheckKind::local) << suite->tasks[0].toml;
    EXPECT_EQ(task.verify.windows, 4);
    EXPECT_EQ(task.verify.window_steps, 20);
}

}  // namespace
}  // namespace trainopt
