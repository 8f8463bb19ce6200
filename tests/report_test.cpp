#include "scoring/report.h"

#include <gtest/gtest.h>

#include <cmath>

#include "scoring/ci_report.h"
#include "scoring/report_format.h"
#include "test_util.h"

namespace trainopt {
namespace {

ScoreReport sample_report() {
    ScoreReport r;
    r.created_at = "2026-11-22T00:00:00Z";
    r.submission = "subs/x";
    r.submission_kind = "overlay";
    r.suite = "test";
    r.sandbox = "bubblewrap";
    r.threads = 2;
    r.reps = 3;
    r.seed = 9;
    r.peak_gflops = 100;
    r.complete = true;
    TaskReport a;
    a.name = "a<b";
    a.hot_spot = "matmul";
    a.baseline_seconds = {10, 11, 12};
    a.submission_seconds = {1, 1.1, 0.9};
    a.steps = 10;
    a.step_gflop = 1.0;
    a.baseline_kernel_seconds = {{"matmul", 8.0}, {"attention", 2.0}};
    a.submission_kernel_seconds = {{"matmul", 0.5}};
    TaskReport b = a;
    b.name = "b";
    b.valid = false;
    b.reasons = {"loss trajectory differs"};
    r.tasks = {a, b};
    finalize_report(r);
    return r;
}

TEST(Report, VerdictSpeedupsAndSpeedOfLight) {
    ScoreReport r = sample_report();
    EXPECT_EQ(r.verdict, Verdict::invalid);
    EXPECT_DOUBLE_EQ(r.tasks[0].speedup, 11.0);
    EXPECT_DOUBLE_EQ(r.tasks[1].speedup, 0.0);
    EXPECT_DOUBLE_EQ(r.summary.arithmetic, 5.5);
    EXPECT_DOUBLE_EQ(r.tasks[0].speed_of_light_seconds, 0.1);
    EXPECT_DOUBLE_EQ(r.tasks[0].speed_of_light_speedup, 110.0);
}

TEST(Report, JsonRoundTrips) {
    ScoreReport r = sample_report();
    Result<ScoreReport> loaded = report_from_json(report_to_json(r));
    ASSERT_TRUE(loaded) << loaded.error();
    const ScoreReport& back = *loaded;
    EXPECT_EQ(report_to_json(back).dump(), report_to_json(r).dump());
}

// Reports say how each trainer was obtained: built now, or reused from the build cache.
TEST(Report, BuildProvenanceIsKeptAndShown) {
    ScoreReport r = sample_report();
    r.build = {true, std::string(64, 'a'), 56.8, "2026-12-02T17:32:33Z"};
    Result<ScoreReport> loaded = report_from_json(report_to_json(r));
    ASSERT_TRUE(loaded) << loaded.error();
    EXPECT_TRUE(loaded->build.from_cache);
    EXPECT_EQ(loaded->build.cache_key, r.build.cache_key);
    const std::string reused =
        "reused from the build cache (key aaaaaaaaaaaa, built 2026-12-02T17:32:33Z in 56.8 s)";
    EXPECT_EQ(build_text(r.build), reused);
    EXPECT_NE(report_to_markdown(r).find(reused), std::string::npos);
    EXPECT_EQ(build_text(BuildInfo{false, "", 12.34, ""}), "built in 12.3 s");

    CiReport ci;
    ci.current_build = r.build;
    ci.previous_build = BuildInfo{false, "", 90.0, ""};
    const nlohmann::json j = ci_report_to_json(ci);
    EXPECT_TRUE(j.at("builds").at("current").at("from_cache").get<bool>());
    EXPECT_FALSE(j.at("builds").at("previous").at("from_cache").get<bool>());
    const std::string md = ci_report_to_markdown(ci);
    EXPECT_NE(md.find(reused), std::string::npos);
    EXPECT_NE(md.find("built in 90.0 s"), std::string::npos);
}

// sample_report's two tasks scored as a first suite, plus a generated suite of one task
ScoreReport two_suite_report() {
    ScoreReport r = sample_report();
    r.suite = "test + generated:5:1";
    r.suites = TwoSuiteReport{"test", "generated:5:1", {}};
    for (TaskReport& t : r.tasks) t.suite = "test";
    TaskReport g = r.tasks[0];
    g.name = "gen-0";
    g.suite = "generated:5:1";
    g.submission_seconds = {5, 5.5, 4.5};
    r.tasks.push_back(g);
    r.generated_suite = "generated:5:1";
    r.generated_tasks = {{"gen-0", "[task]\nname = \"gen-0\"\n"}};
    finalize_report(r);
    return r;
}

TEST(Report, TwoSuitesSideBySideRoundTripAndRender) {
    const ScoreReport r = two_suite_report();
    ASSERT_TRUE(r.suites);
    EXPECT_DOUBLE_EQ(r.suites->summary.first.arithmetic, 5.5);   // 11 and an INVALID 0
    EXPECT_DOUBLE_EQ(r.suites->summary.second.arithmetic, 2.2);  // 11 / 5
    EXPECT_DOUBLE_EQ(r.summary.arithmetic, (5.5 + 2.2) / 2);
    EXPECT_DOUBLE_EQ(r.suites->summary.generalization, 0.4);
    Result<ScoreReport> back = report_from_json(report_to_json(r));
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(report_to_json(*back).dump(), report_to_json(r).dump());
    EXPECT_EQ(back->generated_tasks.size(), 1u);
    const std::string md = report_to_markdown(r);
    EXPECT_NE(md.find("**generalization** (second / first) | | **0.40**"), std::string::npos);
    EXPECT_NE(md.find("generated:5:1 / gen-0"), std::string::npos);
    EXPECT_NE(report_to_html(r).find("<h2>Generalization</h2>"), std::string::npos);
    // a task naming a suite the report does not have is refused
    nlohmann::json j = report_to_json(r);
    j["tasks"][2]["suite"] = "other";
    EXPECT_FALSE(report_from_json(j));
    j = report_to_json(sample_report());
    j["tasks"][0]["suite"] = "test";
    EXPECT_FALSE(report_from_json(j));
}

TEST(Report, RejectsForeignOrDamagedJson) {
    EXPECT_FALSE(report_from_json(nlohmann::json::object()));
    nlohmann::json j = report_to_json(sample_report());
    j["schema_version"] = 99;
    Result<ScoreReport> loaded = report_from_json(j);
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.error().find("schema version 99"), std::string::npos);
    j = report_to_json(sample_report());
    j["tasks"][0]["baseline_seconds"] = {-1.0};
    EXPECT_FALSE(report_from_json(j));
    testing::TempDir dir;
    testing::write_text(dir.path + "/r.json", "{not json");
    loaded = load_report(dir.path + "/r.json");
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.error().find("not valid JSON"), std::string::npos);
}

TEST(Report, MarkdownAndHtmlCarryTheHeadlineAndTheHumanLine) {
    ScoreReport r = sample_report();
    std::string md = report_to_markdown(r);
    EXPECT_NE(md.find("arithmetic mean"), std::string::npos);
    EXPECT_NE(md.find("loss trajectory differs"), std::string::npos);
    std::string html = report_to_html(r);
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_NE(html.find("human expert 4x"), std::string::npos);
    EXPECT_NE(html.find("a&lt;b"), std::string::npos);  // escaped
    EXPECT_EQ(html.find("a<b"), std::string::npos);
}

TEST(Report, WithoutAMeasuredPeakTheSpeedOfLightIsNotApplicable) {
    ScoreReport r = sample_report();
    r.peak_gflops = 0;  // `verify` does not measure the peak
    for (TaskReport& t : r.tasks) t.speed_of_light_seconds = t.speed_of_light_speedup = 0;
    finalize_report(r);
    EXPECT_EQ(r.tasks[0].speed_of_light_speedup, 0.0);
    EXPECT_NE(report_to_markdown(r).find("| n/a |"), std::string::npos);
    EXPECT_EQ(report_to_markdown(r).find("| 0x |"), std::string::npos);
    EXPECT_NE(report_to_html(r).find("<td class='num'>n/a</td>"), std::string::npos);
}

// sample_report with the models' quality: task a measured on every repetition, task b (INVALID)
// on its first two only (its last run's outputs were not usable).
ScoreReport report_with_quality() {
    ScoreReport r = sample_report();
    TaskReport& a = r.tasks[0];
    a.baseline_final_loss = {2.5, 2.4, 2.6};
    a.submission_final_loss = {2.5001, 2.4001, 2.6001};
    a.baseline_heldout_loss = {2.75, 2.7, 2.8};
    a.submission_heldout_loss = {2.75002, 2.70002, 2.80002};
    TaskReport& b = r.tasks[1];
    const double none = std::nan("");
    b.baseline_final_loss = {3.0, 3.25, none};
    b.submission_final_loss = {3.5, 3.75, none};
    b.baseline_heldout_loss = {3.1, 3.2, none};
    b.submission_heldout_loss = {none, none, none};
    return r;
}

TEST(Report, QualityRoundTripsThroughJsonWithNullForUnmeasured) {
    const ScoreReport r = report_with_quality();
    const nlohmann::json j = report_to_json(r);
    EXPECT_EQ(j["tasks"][0]["baseline_final_loss"], nlohmann::json({2.5, 2.4, 2.6}));
    EXPECT_TRUE(j["tasks"][1]["baseline_final_loss"][2].is_null());
    EXPECT_TRUE(j["tasks"][1]["submission_heldout_loss"][0].is_null());
    Result<ScoreReport> back = report_from_json(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(back->tasks[0].submission_heldout_loss, r.tasks[0].submission_heldout_loss);
    EXPECT_TRUE(std::isnan(back->tasks[1].submission_final_loss[2]));
    EXPECT_EQ(report_to_json(*back).dump(), j.dump());
}

TEST(Report, ReportsWithoutQualityStillLoadAndShowNone) {
    nlohmann::json j = report_to_json(report_with_quality());
    for (nlohmann::json& t : j["tasks"]) {
        for (const char* key : {"baseline_final_loss", "submission_final_loss",
                                "baseline_heldout_loss", "submission_heldout_loss"})
            t.erase(key);
    }
    Result<ScoreReport> old = report_from_json(j);
    ASSERT_TRUE(old) << old.error();
    EXPECT_TRUE(old->tasks[0].baseline_final_loss.empty());
    EXPECT_EQ(report_to_markdown(*old).find("Model quality"), std::string::npos);
    EXPECT_EQ(report_to_html(*old).find("Model quality"), std::string::npos);
    // a list that does not have one value per repetition is damage, not an old report
    j = report_to_json(report_with_quality());
    j["tasks"][0]["submission_heldout_loss"] = {2.0};
    Result<ScoreReport> damaged = report_from_json(j);
    ASSERT_FALSE(damaged);
    EXPECT_NE(damaged.error().find("submission_heldout_loss"), std::string::npos);
    j["tasks"][0]["submission_heldout_loss"] = {"a", "b", "c"};
    EXPECT_FALSE(report_from_json(j));
}

TEST(Report, MarkdownAndHtmlShowTheQualityMediansOfBothSides) {
    const ScoreReport r = report_with_quality();
    const std::string md = report_to_markdown(r);
    EXPECT_NE(md.find("## Model quality"), std::string::npos) << md;
    // medians; unmeasured repetitions are left out, none measured is n/a
    EXPECT_NE(md.find("| a\\<b | 2.5000 / 2.5001 | 2.7500 / 2.7500 |"), std::string::npos) << md;
    EXPECT_NE(md.find("| b | 3.1250 / 3.6250 | 3.1500 / n/a |"), std::string::npos) << md;
    const std::string html = report_to_html(r);
    EXPECT_NE(html.find("<h2>Model quality</h2>"), std::string::npos);
    EXPECT_NE(html.find("<td class='num'>2.5001</td>"), std::string::npos);
    EXPECT_NE(html.find("<td class='num'>3.6250</td><td class='num'>3.1500</td><td "
                        "class='num'>n/a</td>"),
              std::string::npos)
        << html;
}

TEST(Report, AtomicWriteReplacesWholeFiles) {
    testing::TempDir dir;
    Status written = write_file_atomic(dir.path + "/sub/r.txt", "one");
    ASSERT_TRUE(written) << written.error();
    written = write_file_atomic(dir.path + "/sub/r.txt", "two");
    ASSERT_TRUE(written) << written.error();
    EXPECT_EQ(testing::read_text(dir.path + "/sub/r.txt"), "two");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path + "/sub"), {}), 1);
    EXPECT_FALSE(write_file_atomic("/proc/forbidden/r.txt", "x"));
}

}  // namespace
}  // namespace trainopt
