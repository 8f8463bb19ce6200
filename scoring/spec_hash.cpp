#include "scoring/spec_hash.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tasks/sha256.h"

namespace trainopt {

namespace {

// The tag in front of every canonical spec: a change of the canonical form changes every hash,
// instead of letting two forms collide.
constexpr const char* kSpecFormat = "trainopt-task-spec/1";
constexpr const char* kSuiteFormat = "trainopt-suite/1";

// The data as it reaches training: a synthetic corpus is fixed by its generator's parameters, a
// text corpus by its bytes (the pinned SHA-256), or failing a pin by the files' names.
nlohmann::json canonical_data(const DataSpec& d) {
    nlohmann::json j = {{"kind", d.kind}, {"heldout_fraction", d.heldout_fraction}};
    if (d.kind == "synthetic") {
        j["order"] = d.order;
        j["branching"] = d.branching;
        j["tokens"] = d.tokens;
        j["data_seed"] = d.data_seed;
    } else if (!d.sha256.empty()) {
        j["sha256"] = d.sha256;
    } else {
        nlohmann::json files = nlohmann::json::array();
        for (const std::string& path : d.paths)
            files.push_back(std::filesystem::path(path).filename().string());
        j["files"] = files;
    }
    return j;
}

}  // namespace

std::string canonical_task_spec(const TaskSpec& t) {
    // nlohmann::json keeps object keys sorted, and dump() writes numbers in the shortest form
    // that reads back to the same double; the float training parameters are widened exactly.
    const nlohmann::json j = {
        {"format", kSpecFormat},
        {"model",
         {{"vocab_size", t.model.vocab_size},
          {"context", t.model.context},
          {"d_model", t.model.d_model},
          {"layers", t.model.layers},
          {"heads", t.model.heads}}},
        {"data", canonical_data(t.data)},
        {"train",
         {{"batch", t.train.batch},
          {"steps", t.train.steps},
          {"lr", (double)t.train.lr},
          {"beta1", (double)t.train.beta1},
          {"beta2", (double)t.train.beta2},
          {"eps", (double)t.train.eps},
          {"weight_decay", (double)t.train.weight_decay}}},
        {"eval", {{"batches", t.eval_batches}}},
        {"tolerances",
         {{"loss_abs", t.tolerances.loss_abs},
          {"heldout_abs", t.tolerances.heldout_abs},
          {"weights_rel", t.tolerances.weights_rel},
          {"step_loss_abs", t.tolerances.step_loss_abs},
          {"step_state_rel", t.tolerances.step_state_rel},
          {"heldout_band", t.tolerances.heldout_band}}},
        {"verify",
         {{"check", t.verify.check == CheckKind::local ? "local" : "trajectory"},
          {"windows", t.verify.windows},
          {"window_steps", t.verify.window_steps}}}};
    return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

std::string task_spec_hash(const TaskSpec& task) {
    return sha256_hex(canonical_task_spec(task));
}

std::string suite_hash(std::vector<std::pair<std::string, std::string>> named_task_hashes) {
    for (const auto& [name, hash] : named_task_hashes) {
        if (!is_sha256_hex(hash)) return kUnknownHash;
    }
    std::sort(named_task_hashes.begin(), named_task_hashes.end());
    nlohmann::json tasks = nlohmann::json::array();
    for (const auto& [name, hash] : named_task_hashes) tasks.push_back({name, hash});
    const nlohmann::json j = {{"format", kSuiteFormat}, {"tasks", tasks}};
    return sha256_hex(j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace));
}

std::string suite_hash(const Suite& suite) {
    std::vector<std::pair<std::string, std::string>> named;
    for (const TaskSpec& t : suite.tasks) named.emplace_back(t.name, task_spec_hash(t));
    return suite_hash(std::move(named));
}

bool is_sha256_hex(const std::string& text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

}  // namespace trainopt
