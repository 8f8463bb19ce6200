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

// sample_report (5.5x) scored with --references: the example and the expert next to it
ScoreReport report_with_references() {
    ScoreReport r = sample_report();
    SuiteSummary example;
    example.arithmetic = 9.1;
    example.arithmetic_ci = {7.1, 10.2};
    example.geometric = 8.8;
    example.geometric_ci = {7.0, 10.0};
    SuiteSummary expert = example;
    expert.arithmetic = 44.3;
    expert.arithmetic_ci = {38.9, 49.7};
    r.references = {{"example", "/src/submissions/blas-tbb", Verdict::valid, example},
                    {"expert", "/src/submissions/expert", Verdict::valid, expert}};
    r.phases = {300, 1, 20, 3, 2, 255, 12};
    return r;
}

// The block "where this stands": the human line, the references and the submission, the
// fastest first, in every rendering; and it survives a JSON round trip with the phases.
TEST(Report, ReferencesRoundTripAndStandSideBySide) {
    const ScoreReport r = report_with_references();
    Result<ScoreReport> back = report_from_json(report_to_json(r));
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(report_to_json(*back).dump(), report_to_json(r).dump());
    ASSERT_EQ(back->references.size(), 2u);
    EXPECT_EQ(back->references[1].role, "expert");
    EXPECT_EQ(back->references[1].verdict, Verdict::valid);
    EXPECT_DOUBLE_EQ(back->references[1].summary.arithmetic_ci.high, 49.7);
    EXPECT_DOUBLE_EQ(back->phases.timed_runs, 255);
    EXPECT_DOUBLE_EQ(back->phases.other(), 7);

    const std::string md = report_to_markdown(*back);
    const size_t block = md.find("## Where this stands");
    ASSERT_NE(block, std::string::npos) << md;
    const size_t expert =
        md.find("| expert submission (the headroom) | 44.30x | 95% CI 38.90 - 49.70 |");
    const size_t example = md.find("| example submission (a few hours of work) | 9.10x |");
    const size_t self = md.find("| **this submission** | 5.50x |");
    const size_t human = md.find("| human expert reference (4-8 hours) | 4.00x |");
    for (size_t at : {expert, example, self, human}) ASSERT_NE(at, std::string::npos) << md;
    EXPECT_LT(block, expert);
    EXPECT_LT(expert, example);
    EXPECT_LT(example, self);
    EXPECT_LT(self, human);
    EXPECT_NE(md.find("wall time 300 s: timed runs 255 s (85%), build 20 s"), std::string::npos);

    const std::string text = report_to_text(*back);
    EXPECT_NE(text.find("Where this stands:"), std::string::npos) << text;
    EXPECT_NE(text.find("> this submission"), std::string::npos);
    EXPECT_LT(text.find("expert submission"), text.find("human expert reference (4-8 hours)"));
    const std::string html = report_to_html(*back);
    EXPECT_NE(html.find("<h2>Where this stands</h2>"), std::string::npos);
    EXPECT_NE(html.find("<strong>this submission</strong></td><td class='num'>5.50x"),
              std::string::npos)
        << html;
    EXPECT_NE(html.find("timed runs 255 s (85%)"), std::string::npos);
    // nothing of the kind without references
    EXPECT_EQ(report_to_markdown(sample_report()).find("Where this stands"), std::string::npos);
    EXPECT_EQ(report_to_html(sample_report()).find("Where this stands"), std::string::npos);
}

// A reference that failed shows its verdict in place of a CI; unknown roles and verdicts, and
// negative phase times, are refused on load.
TEST(Report, ReferencesAndPhasesAreValidatedOnLoad) {
    ScoreReport r = report_with_references();
    r.references[0].verdict = Verdict::invalid;
    r.references[0].summary = {};
    EXPECT_NE(report_to_text(r).find("INVALID"), std::string::npos);
    nlohmann::json j = report_to_json(r);
    j["references"][0]["role"] = "oracle";
    EXPECT_FALSE(report_from_json(j));
    j = report_to_json(r);
    j["references"][1]["verdict"] = "GREAT";
    EXPECT_FALSE(report_from_json(j));
    j = report_to_json(r);
    j["references"][1]["score"]["arithmetic_mean"] = -1;
    EXPECT_FALSE(report_from_json(j));
    j = report_to_json(r);
    j["phase_seconds"]["build"] = -3;
    EXPECT_FALSE(report_from_json(j));
    // reports from before these fields load with none
    j = report_to_json(sample_report());
    j.erase("phase_seconds");
    Result<ScoreReport> old = report_from_json(j);
    ASSERT_TRUE(old) << old.error();
    EXPECT_TRUE(old->references.empty());
    EXPECT_EQ(old->phases.total, 0);
    EXPECT_EQ(report_to_markdown(*old).find("wall time"), std::string::npos);
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
