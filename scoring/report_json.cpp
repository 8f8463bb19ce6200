// The report's versioned JSON form (schema kReportSchemaVersion): written by every score,
// read back by `trainopt report` and `trainopt ci`.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "scoring/report.h"

namespace trainopt {

namespace {

// Per-repetition values that may be missing: NaN is written as null and read back as NaN.
nlohmann::json measured_values_to_json(const std::vector<double>& values) {
    nlohmann::json out = nlohmann::json::array();
    for (double v : values) out.push_back(std::isfinite(v) ? nlohmann::json(v) : nullptr);
    return out;
}

// An optional per-repetition list (added within schema 1): empty when absent or empty,
// otherwise one number or null per repetition.
std::vector<double> measured_values_from_json(const nlohmann::json& task, const char* key,
                                              size_t reps) {
    std::vector<double> out;
    if (!task.contains(key)) return out;
    const nlohmann::json& list = task.at(key);
    if (!list.is_array() || (!list.empty() && list.size() != reps))
        throw std::runtime_error(std::string(key) + " must hold one value per repetition");
    for (const nlohmann::json& v : list)
        out.push_back(v.is_null() ? std::nan("") : v.get<double>());
    return out;
}

nlohmann::json summary_to_json(const SuiteSummary& s) {
    return {{"arithmetic_mean", s.arithmetic},
            {"arithmetic_mean_ci95", {s.arithmetic_ci.low, s.arithmetic_ci.high}},
            {"geometric_mean", s.geometric},
            {"geometric_mean_ci95", {s.geometric_ci.low, s.geometric_ci.high}}};
}

// A spec or suite hash (added within schema 1): kUnknownHash when absent, otherwise 64 lowercase
// hex digits or kUnknownHash.
std::string hash_from_json(const nlohmann::json& j, const char* key) {
    if (!j.contains(key)) return kUnknownHash;
    std::string hash = j.at(key).get<std::string>();
    if (hash != kUnknownHash && !is_sha256_hex(hash))
        throw std::runtime_error(std::string(key) + " is neither a SHA-256 nor \"unknown\"");
    return hash;
}

// A deviation that may not be finite (a tensor's relative distance, a NaN loss's deviation): a
// number, or "inf" / "nan", which JSON numbers cannot hold.
nlohmann::json distance_to_json(double rel) {
    if (std::isfinite(rel)) return rel;
    return std::isnan(rel) ? "nan" : "inf";
}

double distance_from_json(const nlohmann::json& j) {
    if (j.is_number()) return j.get<double>();
    const std::string word = j.get<std::string>();
    if (word == "inf") return INFINITY;
    if (word == "nan") return std::nan("");
    throw std::runtime_error("a deviation must be a number, \"inf\" or \"nan\"");
}

nlohmann::json tensors_to_json(const std::vector<TensorReport>& tensors) {
    nlohmann::json out = nlohmann::json::array();
    for (const TensorReport& t : tensors) {
        out.push_back({{"tensor", t.tensor},
                       {"layer", t.layer},
                       {"rel", distance_to_json(t.rel)},
                       {"kernel", t.kernel}});
    }
    return out;
}

// Optional (added within schema 1): empty when absent.
std::vector<TensorReport> tensors_from_json(const nlohmann::json& task) {
    std::vector<TensorReport> out;
    if (!task.contains("tensors")) return out;
    for (const nlohmann::json& jt : task.at("tensors")) {
        TensorReport t;
        t.tensor = jt.at("tensor").get<std::string>();
        t.layer = jt.at("layer").get<int>();
        if (t.layer < -1) throw std::runtime_error("a tensor's layer must be -1 or more");
        t.rel = distance_from_json(jt.at("rel"));
        t.kernel = jt.at("kernel").get<std::string>();
        out.push_back(std::move(t));
    }
    return out;
}

SuiteSummary summary_from_json(const nlohmann::json& j) {
    SuiteSummary s;
    s.arithmetic = j.at("arithmetic_mean").get<double>();
    s.arithmetic_ci = {j.at("arithmetic_mean_ci95").at(0).get<double>(),
                       j.at("arithmetic_mean_ci95").at(1).get<double>()};
    s.geometric = j.at("geometric_mean").get<double>();
    s.geometric_ci = {j.at("geometric_mean_ci95").at(0).get<double>(),
                      j.at("geometric_mean_ci95").at(1).get<double>()};
    for (double v : {s.arithmetic, s.arithmetic_ci.low, s.arithmetic_ci.high, s.geometric,
                     s.geometric_ci.low, s.geometric_ci.high}) {
        if (!std::isfinite(v) || v < 0)
            throw std::runtime_error("a speedup must be a finite number, 0 or more");
    }
    return s;
}

Verdict verdict_from_string(const std::string& text) {
    for (Verdict v : {Verdict::valid, Verdict::invalid, Verdict::rejected, Verdict::incomplete})
        if (to_string(v) == text) return v;
    throw std::runtime_error("unknown verdict " + text);
}

nlohmann::json references_to_json(const std::vector<ReferenceScore>& references) {
    nlohmann::json out = nlohmann::json::array();
    for (const ReferenceScore& ref : references) {
        out.push_back({{"role", ref.role},
                       {"submission", ref.submission},
                       {"verdict", to_string(ref.verdict)},
                       {"score", summary_to_json(ref.summary)}});
    }
    return out;
}

// Optional (added within schema 1): empty when absent.
std::vector<ReferenceScore> references_from_json(const nlohmann::json& j) {
    std::vector<ReferenceScore> out;
    if (!j.contains("references")) return out;
    for (const nlohmann::json& jr : j.at("references")) {
        ReferenceScore ref;
        ref.role = jr.at("role").get<std::string>();
        if (std::find_if(std::begin(kReferenceRoles), std::end(kReferenceRoles),
                         [&](const char* role) { return ref.role == role; }) ==
            std::end(kReferenceRoles))
            throw std::runtime_error("unknown reference role " + ref.role);
        ref.submission = jr.at("submission").get<std::string>();
        ref.verdict = verdict_from_string(jr.at("verdict").get<std::string>());
        ref.summary = summary_from_json(jr.at("score"));
        out.push_back(std::move(ref));
    }
    return out;
}

nlohmann::json phases_to_json(const PhaseSeconds& p) {
    return {{"total", p.total},
            {"setup", p.setup},
            {"build", p.build},
            {"machine", p.machine},
            {"task_data", p.task_data},
            {"timed_runs", p.timed_runs},
            {"verification", p.verification},
            {"other", p.other()}};
}

// Optional (added within schema 1): all 0 when absent.
PhaseSeconds phases_from_json(const nlohmann::json& j) {
    PhaseSeconds p;
    if (!j.contains("phase_seconds")) return p;
    const nlohmann::json& jp = j.at("phase_seconds");
    p.total = jp.at("total").get<double>();
    p.setup = jp.at("setup").get<double>();
    p.build = jp.at("build").get<double>();
    p.machine = jp.at("machine").get<double>();
    p.task_data = jp.at("task_data").get<double>();
    p.timed_runs = jp.at("timed_runs").get<double>();
    p.verification = jp.at("verification").get<double>();
    for (double v :
         {p.total, p.setup, p.build, p.machine, p.task_data, p.timed_runs, p.verification}) {
        if (!std::isfinite(v) || v < 0)
            throw std::runtime_error("a phase's seconds must be a finite number, 0 or more");
    }
    return p;
}

}  // namespace

nlohmann::json build_info_to_json(const BuildInfo& build) {
    nlohmann::json j = {{"from_cache", build.from_cache},
                        {"cache_key", build.cache_key},
                        {"seconds", build.seconds},
                        {"built_at", build.built_at}};
    if (build.incremental) {
        j["incremental"] = true;
        j["compiled_files"] = build.compiled_files;
        j["files_from_compile_cache"] = build.files_from_compile_cache;
    }
    return j;
}

BuildInfo build_info_from_json(const nlohmann::json& j) {
    BuildInfo build;
    build.from_cache = j.value("from_cache", false);
    build.cache_key = j.value("cache_key", std::string());
    build.seconds = j.value("seconds", 0.0);
    build.built_at = j.value("built_at", std::string());
    build.incremental = j.value("incremental", false);
    build.compiled_files = j.value("compiled_files", -1);
    build.files_from_compile_cache = j.value("files_from_compile_cache", -1);
    return build;
}

nlohmann::json report_to_json(const ScoreReport& r) {
    nlohmann::json j;
    j["schema_version"] = r.schema_version;
    j["command"] = r.command;
    j["created_at"] = r.created_at;
    j["submission"] = {{"path", r.submission},
                       {"kind", r.submission_kind},
                       {"build", build_info_to_json(r.build)}};
    j["suite"] = r.suite;
    j["suite_hash"] = r.suite_hash;
    j["machine"] = {{"sandbox", r.sandbox},
                    {"threads", r.threads},
                    {"peak_gflops", r.peak_gflops},
                    {"fma_ceiling",
                     {{"gflops", r.fma_ceiling.gflops},
                      {"isa", r.fma_ceiling.isa},
                      {"threads", r.fma_ceiling.threads},
                      {"trials", r.fma_ceiling.trials},
                      {"seconds", r.fma_ceiling.seconds},
                      {"not_a_ceiling", r.fma_ceiling.not_a_ceiling}}},
                    {"backstop_margin", r.backstop_margin}};
    if (r.machine.known())
        j["machine"]["identity"] = {
            {"host", r.machine.host}, {"cpu_model", r.machine.cpu_model}, {"cpus", r.machine.cpus}};
    j["reps"] = r.reps;
    j["seed"] = r.seed;
    j["complete"] = r.complete;
    j["verdict"] = to_string(r.verdict);
    j["score"] = summary_to_json(r.summary);
    j["score"]["human_reference"] = r.human_reference;
    j["score"]["multiple_of_human_reference"] = r.summary.arithmetic / r.human_reference;
    if (r.suites) {
        const TwoSuiteSummary& s = r.suites->summary;
        j["suites"] = {
            {"first", {{"name", r.suites->first}, {"score", summary_to_json(s.first)}}},
            {"second", {{"name", r.suites->second}, {"score", summary_to_json(s.second)}}},
            {"generalization", s.generalization},
            {"generalization_ci95", {s.generalization_ci.low, s.generalization_ci.high}}};
    }
    if (!r.generated_suite.empty()) {
        j["generated_suite"] = {{"name", r.generated_suite}, {"tasks", nlohmann::json::array()}};
        for (const GeneratedTaskFile& f : r.generated_tasks)
            j["generated_suite"]["tasks"].push_back({{"name", f.name}, {"toml", f.toml}});
    }
    if (!r.references.empty()) j["references"] = references_to_json(r.references);
    j["phase_seconds"] = phases_to_json(r.phases);
    j["warnings"] = r.warnings;
    j["rejected"] = r.rejected;
    j["tasks"] = nlohmann::json::array();
    for (const TaskReport& t : r.tasks) {
        j["tasks"].push_back(
            {{"name", t.name},
             {"suite", t.suite},
             {"hot_spot", t.hot_spot},
             {"valid", t.valid},
             {"reasons", t.reasons},
             {"warnings", t.warnings},
             {"seeds", t.seeds},
             {"baseline_cached", t.baseline_cached},
             {"baseline_seconds", t.baseline_seconds},
             {"submission_seconds", t.submission_seconds},
             {"speedup", t.speedup},
             {"speedup_ci95", {t.speedup_ci.low, t.speedup_ci.high}},
             {"steps", t.steps},
             {"step_gflop", t.step_gflop},
             {"speed_of_light_seconds", t.speed_of_light_seconds},
             {"speed_of_light_speedup", t.speed_of_light_speedup},
             {"backstop_seconds", t.backstop_seconds},
             {"backstop_fraction", t.backstop_fraction},
             {"max_loss_diff", t.max_loss_diff},
             {"worst_loss_step", t.worst_loss_step},
             {"first_loss_step_over", t.first_loss_step_over},
             {"first_loss_diff_over", distance_to_json(t.first_loss_diff_over)},
             {"tensors", tensors_to_json(t.tensors)},
             {"max_heldout_diff", t.max_heldout_diff},
             {"max_weight_distance", t.max_weight_distance},
             {"baseline_final_loss", measured_values_to_json(t.baseline_final_loss)},
             {"submission_final_loss", measured_values_to_json(t.submission_final_loss)},
             {"baseline_heldout_loss", measured_values_to_json(t.baseline_heldout_loss)},
             {"submission_heldout_loss", measured_values_to_json(t.submission_heldout_loss)},
             {"baseline_peak_rss_mb", t.baseline_peak_rss_mb},
             {"submission_peak_rss_mb", t.submission_peak_rss_mb},
             {"baseline_kernel_seconds", t.baseline_kernel_seconds},
             {"submission_kernel_seconds", t.submission_kernel_seconds},
             {"check", t.check},
             {"windows_checked", t.windows_checked},
             {"max_window_loss_diff", t.max_window_loss_diff},
             {"max_window_state_rel", t.max_window_state_rel},
             {"min_window_adam_step", t.min_window_adam_step},
             {"max_window_tensor_rel", t.max_window_tensor_rel},
             {"spec_hash", t.spec_hash}});
    }
    return j;
}

Result<ScoreReport> report_from_json(const nlohmann::json& j) {
    try {
        if (!j.is_object() || !j.contains("schema_version"))
            return failure("not a trainopt report (no schema_version)");
        int version = j.at("schema_version").get<int>();
        if (version != kReportSchemaVersion) {
            return failure("report schema version " + std::to_string(version) +
                           " is not supported (this trainopt reads version " +
                           std::to_string(kReportSchemaVersion) + ")");
        }
        ScoreReport r;
        // added within schema 1: optional, "score" in earlier reports
        r.command = j.value("command", std::string("score"));
        if (std::find(std::begin(kReportCommands), std::end(kReportCommands), r.command) ==
            std::end(kReportCommands))
            throw std::runtime_error("unknown command " + r.command);
        r.created_at = j.at("created_at").get<std::string>();
        r.submission = j.at("submission").at("path").get<std::string>();
        r.submission_kind = j.at("submission").at("kind").get<std::string>();
        // added within schema 1: optional, so earlier reports still load (as built on the spot)
        if (j.at("submission").contains("build"))
            r.build = build_info_from_json(j.at("submission").at("build"));
        r.suite = j.at("suite").get<std::string>();
        r.suite_hash = hash_from_json(j, "suite_hash");
        r.sandbox = j.at("machine").at("sandbox").get<std::string>();
        r.threads = j.at("machine").at("threads").get<int>();
        r.peak_gflops = j.at("machine").at("peak_gflops").get<double>();
        // added within schema 1: optional, so earlier reports still load (without a backstop).
        // The margin is not read back: finalize_report applies this trainopt's own.
        if (j.at("machine").contains("fma_ceiling")) {
            const nlohmann::json& c = j.at("machine").at("fma_ceiling");
            r.fma_ceiling.gflops = c.at("gflops").get<double>();
            r.fma_ceiling.isa = c.at("isa").get<std::string>();
            r.fma_ceiling.threads = c.at("threads").get<int>();
            r.fma_ceiling.trials = c.at("trials").get<int>();
            r.fma_ceiling.seconds = c.at("seconds").get<double>();
            r.fma_ceiling.not_a_ceiling = c.at("not_a_ceiling").get<std::string>();
        }
        if (j.at("machine").contains("identity")) {  // added within schema 1: optional
            const nlohmann::json& id = j.at("machine").at("identity");
            r.machine.host = id.at("host").get<std::string>();
            r.machine.cpu_model = id.at("cpu_model").get<std::string>();
            r.machine.cpus = id.at("cpus").get<int>();
        }
        r.reps = j.at("reps").get<int>();
        r.seed = j.at("seed").get<uint64_t>();
        r.complete = j.at("complete").get<bool>();
        r.warnings = j.at("warnings").get<std::vector<std::string>>();
        r.rejected = j.at("rejected").get<std::vector<std::string>>();
        r.references = references_from_json(j);
        r.phases = phases_from_json(j);
        // added within schema 1: optional, so earlier reports still load
        if (j.contains("suites")) {
            TwoSuiteReport suites;
            suites.first = j.at("suites").at("first").at("name").get<std::string>();
            suites.second = j.at("suites").at("second").at("name").get<std::string>();
            if (suites.first.empty() || suites.second.empty() || suites.first == suites.second)
                throw std::runtime_error("the two suites must have two different names");
            r.suites = suites;
        }
        if (j.contains("generated_suite")) {
            r.generated_suite = j.at("generated_suite").at("name").get<std::string>();
            for (const auto& f : j.at("generated_suite").at("tasks"))
                r.generated_tasks.push_back(
                    {f.at("name").get<std::string>(), f.at("toml").get<std::string>()});
        }
        for (const auto& jt : j.at("tasks")) {
            TaskReport t;
            t.name = jt.at("name").get<std::string>();
            t.suite = jt.value("suite", std::string());
            if (r.suites ? t.suite != r.suites->first && t.suite != r.suites->second
                         : !t.suite.empty())
                throw std::runtime_error("task " + t.name + " names a suite the report does not");
            t.hot_spot = jt.at("hot_spot").get<std::string>();
            t.valid = jt.at("valid").get<bool>();
            t.reasons = jt.at("reasons").get<std::vector<std::string>>();
            t.warnings = jt.at("warnings").get<std::vector<std::string>>();
            t.seeds = jt.at("seeds").get<std::vector<uint64_t>>();
            t.baseline_cached = jt.value("baseline_cached", false);
            t.baseline_seconds = jt.at("baseline_seconds").get<std::vector<double>>();
            t.submission_seconds = jt.at("submission_seconds").get<std::vector<double>>();
            t.steps = jt.at("steps").get<int>();
            t.step_gflop = jt.at("step_gflop").get<double>();
            t.max_loss_diff = jt.at("max_loss_diff").get<double>();
            // added within schema 1: optional, so earlier reports still load
            t.worst_loss_step = jt.value("worst_loss_step", -1);
            t.first_loss_step_over = jt.value("first_loss_step_over", -1);
            if (jt.contains("first_loss_diff_over"))
                t.first_loss_diff_over = distance_from_json(jt.at("first_loss_diff_over"));
            t.tensors = tensors_from_json(jt);
            t.max_heldout_diff = jt.at("max_heldout_diff").get<double>();
            t.max_weight_distance = jt.at("max_weight_distance").get<double>();
            // added within schema 1: optional, so earlier reports still load
            // a task whose baseline outputs were cached has no baseline times: count its seeds
            const size_t reps = t.baseline_cached ? t.seeds.size() : t.baseline_seconds.size();
            t.baseline_final_loss = measured_values_from_json(jt, "baseline_final_loss", reps);
            t.submission_final_loss = measured_values_from_json(jt, "submission_final_loss", reps);
            t.baseline_heldout_loss = measured_values_from_json(jt, "baseline_heldout_loss", reps);
            t.submission_heldout_loss =
                measured_values_from_json(jt, "submission_heldout_loss", reps);
            t.baseline_peak_rss_mb = jt.value("baseline_peak_rss_mb", 0.0);
            t.submission_peak_rss_mb = jt.value("submission_peak_rss_mb", 0.0);
            t.check = jt.value("check", std::string("trajectory"));
            if (t.check != "trajectory" && t.check != "local")
                throw std::runtime_error("task " + t.name + " has an unknown check " + t.check);
            t.windows_checked = jt.value("windows_checked", 0);
            t.max_window_loss_diff = jt.value("max_window_loss_diff", 0.0);
            t.max_window_state_rel = jt.value("max_window_state_rel", 0.0);
            t.min_window_adam_step = jt.value("min_window_adam_step", 0.0);
            t.max_window_tensor_rel = jt.value("max_window_tensor_rel", 0.0);
            t.spec_hash = hash_from_json(jt, "spec_hash");
            t.baseline_kernel_seconds =
                jt.at("baseline_kernel_seconds").get<std::map<std::string, double>>();
            t.submission_kernel_seconds =
                jt.at("submission_kernel_seconds").get<std::map<std::string, double>>();
            for (double s : t.baseline_seconds) {
                if (!(s > 0))
                    throw std::runtime_error("task " + t.name +
                                             " has a non-positive baseline time");
            }
            for (double s : t.submission_seconds) {
                if (!(s > 0))
                    throw std::runtime_error("task " + t.name +
                                             " has a non-positive submission time");
            }
            r.tasks.push_back(std::move(t));
        }
        finalize_report(r);
        return r;
    } catch (const std::exception& e) {
        return failure(std::string("malformed report: ") + e.what());
    }
}

}  // namespace trainopt
