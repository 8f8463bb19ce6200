#include "scoring/ci_report.h"

#include <cmath>
#include <sstream>

#include "scoring/report_format.h"
#include "scoring/stats.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

// A log-ratio as a relative change, "+12.3%".
std::string percent_change(double log_ratio) {
    if (!std::isfinite(log_ratio)) return log_ratio > 0 ? "+inf" : "-inf";
    const double p = std::expm1(log_ratio) * 100;
    return (p >= 0 ? "+" : "") + format_fixed(p, 1) + "%";
}

nlohmann::json estimate_to_json(const PairedEstimate& e) {
    auto finite_or_null = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nullptr; };
    return {{"rounds", e.rounds},
            {"change", std::expm1(e.mean)},
            {"change_low", finite_or_null(std::expm1(e.low))},
            {"change_high", finite_or_null(std::expm1(e.high))},
            {"log_ratio", e.mean},
            {"spread", e.spread}};
}

std::string interval_text(const PairedEstimate& e) {
    return percent_change(e.mean) + " (bounds " + percent_change(e.low) + " to " +
           percent_change(e.high) + ")";
}

}  // namespace

nlohmann::json ci_report_to_json(const CiReport& r) {
    nlohmann::json j;
    j["kind"] = "trainopt ci";
    j["created_at"] = r.created_at;
    j["current"] = r.current;
    j["previous"] = r.previous;
    j["builds"] = {{"current", build_info_to_json(r.current_build)},
                   {"previous", build_info_to_json(r.previous_build)}};
    j["suite"] = r.suite;
    j["machine"] = {{"threads", r.threads}, {"sandbox", r.sandbox}};
    j["seed"] = r.seed;
    j["test"] = {{"max_slowdown", r.test.max_slowdown},
                 {"alpha", r.test.alpha},
                 {"min_rounds", r.test.min_rounds},
                 {"max_rounds", r.test.max_rounds},
                 {"budget_seconds", r.budget_seconds}};
    j["elapsed_seconds"] = r.elapsed_seconds;
    j["setup_seconds"] = r.setup_seconds;
    j["round_seconds"] = r.round_seconds;
    j["rounds"] = r.rounds;
    j["complete"] = r.complete;
    j["verdict"] = r.invalid.empty() ? to_string(r.verdict) : "INVALID";
    j["explanation"] = r.explanation;
    j["suite_change"] = estimate_to_json(r.suite_wall);
    j["invalid"] = r.invalid;
    j["warnings"] = r.warnings;
    j["tasks"] = nlohmann::json::array();
    for (const CiTaskRuns& t : r.tasks) {
        j["tasks"].push_back({{"name", t.name},
                              {"seeds", t.seeds},
                              {"previous_seconds", t.previous_seconds},
                              {"current_seconds", t.current_seconds},
                              {"previous_cpu_seconds", t.previous_cpu_seconds},
                              {"current_cpu_seconds", t.current_cpu_seconds},
                              {"previous_first", t.previous_first},
                              {"wall_change", estimate_to_json(t.wall)},
                              {"cpu_change", estimate_to_json(t.cpu)},
                              {"regressed", t.regressed}});
    }
    return j;
}

std::string ci_report_to_markdown(const CiReport& r) {
    std::ostringstream md;
    const std::string verdict = r.invalid.empty() ? to_string(r.verdict) : "INVALID";
    md << "# trainopt ci: " << verdict << (r.complete ? "" : " (incomplete)") << "\n\n";
    md << "- current: " << markdown_code_span(r.current) << ", "
       << markdown_inline(build_text(r.current_build)) << "\n";
    md << "- previous: " << markdown_code_span(r.previous) << ", "
       << markdown_inline(build_text(r.previous_build)) << "\n";
    md << "- suite: " << markdown_inline(r.suite) << ", " << r.rounds << " paired rounds in "
       << format_fixed(r.elapsed_seconds, 0) << " s (budget " << format_fixed(r.budget_seconds, 0)
       << " s), base seed " << r.seed << ", " << r.threads << " threads\n";
    md << "- allowed slowdown " << format_fixed(r.test.max_slowdown * 100, 1)
       << "%, false-alarm rate at most " << format_fixed(r.test.alpha * 100, 1) << "%\n\n";
    if (!r.explanation.empty()) md << markdown_inline(terminal_safe(r.explanation)) << "\n\n";
    md << "| task | previous s (median) | current s (median) | wall change (bounds) | CPU "
          "change | spread per pair |\n|---|---:|---:|---|---:|---:|\n";
    for (const CiTaskRuns& t : r.tasks) {
        md << "| " << markdown_inline(t.name) << (t.regressed ? " **regressed**" : "") << " | "
           << format_fixed(median(t.previous_seconds), 3) << " | "
           << format_fixed(median(t.current_seconds), 3) << " | " << interval_text(t.wall) << " | "
           << percent_change(t.cpu.mean) << " | " << format_fixed(t.wall.spread * 100, 1)
           << "% |\n";
    }
    md << "| **suite** (mean of the tasks' log-ratios) | | | **" << interval_text(r.suite_wall)
       << "** | | " << format_fixed(r.suite_wall.spread * 100, 1) << "% per round |\n";
    if (!r.invalid.empty() || !r.warnings.empty()) {
        md << "\n## Findings\n\n";
        for (const std::string& w : r.invalid) md << "- INVALID: " << markdown_inline(w) << "\n";
        for (const std::string& w : r.warnings) md << "- WARNING: " << markdown_inline(w) << "\n";
    }
    md << "\nChanges are current over previous: positive is slower. Bounds are one-sided at the "
          "level of each look (docs/ci.md); the spread is the standard deviation of one pair's "
          "log-ratio, the noise floor this machine gave the test.\n";
    return md.str();
}

}  // namespace trainopt
