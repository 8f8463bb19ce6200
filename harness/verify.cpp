#include "harness/verify.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels/gpt.h"

namespace trainopt {

namespace {

std::string fmt_g(double v) {
    std::ostringstream s;
    s.precision(4);
    s << v;
    return s.str();
}

bool read_losses(const std::string& path, int steps, std::vector<float>& out,
                 std::vector<std::string>& problems) {
    std::ifstream f(path);
    if (!f) {
        problems.push_back("losses.csv is missing");
        return false;
    }
    std::string line;
    if (!std::getline(f, line) || line.rfind("step,loss", 0) != 0) {
        problems.push_back("losses.csv does not start with the header step,loss");
        return false;
    }
    out.clear();
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        std::istringstream row(line);
        std::string step_str, loss_str;
        if (!std::getline(row, step_str, ',') || !std::getline(row, loss_str)) {
            problems.push_back("losses.csv row '" + line.substr(0, 60) + "' is malformed");
            return false;
        }
        char* end = nullptr;
        long step = strtol(step_str.c_str(), &end, 10);
        if (*end != '\0' || step != (long)out.size()) {
            problems.push_back("losses.csv row " + std::to_string(out.size() + 1) + " has step '" +
                               step_str + "', expected " + std::to_string(out.size()));
            return false;
        }
        float loss = strtof(loss_str.c_str(), &end);
        if (end == loss_str.c_str() || !std::isfinite(loss)) {
            problems.push_back("losses.csv has a non-finite or unreadable loss at step " +
                               step_str);
            return false;
        }
        out.push_back(loss);
        if ((int)out.size() > steps) break;
    }
    if ((int)out.size() != steps) {
        problems.push_back("losses.csv has " + std::to_string(out.size()) +
                           " steps, the task has " + std::to_string(steps) +
                           " (skipped or extra steps)");
        return false;
    }
    return true;
}

double l2_distance(const std::vector<float>& a, const std::vector<float>& b) {
    double sum = 0;
    for (size_t i = 0; i < a.size(); i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return std::sqrt(sum);
}

}  // namespace

bool read_run_outputs(const std::string& dir, const TaskSpec& task, RunOutputs& out,
                      std::vector<std::string>& problems) {
    const size_t before = problems.size();
    read_losses(dir + "/losses.csv", task.train.steps, out.losses, problems);

    std::string error;
    if (!read_checkpoint(dir + "/final.ckpt", out.checkpoint, error)) {
        problems.push_back(error);
    } else {
        const GPTConfig& c = out.checkpoint.config;
        if (c.vocab_size != task.model.vocab_size || c.max_seq_len != task.model.context ||
            c.channels != task.model.d_model || c.num_layers != task.model.layers ||
            c.num_heads != task.model.heads) {
            problems.push_back("final.ckpt holds a model of a different shape than the task's");
        } else if (out.checkpoint.steps != task.train.steps) {
            problems.push_back("final.ckpt says " + std::to_string(out.checkpoint.steps) +
                               " steps were trained, the task has " +
                               std::to_string(task.train.steps));
        }
        for (float p : out.checkpoint.params) {
            if (!std::isfinite(p)) {
                problems.push_back("final.ckpt holds non-finite parameters");
                break;
            }
        }
    }

    std::ifstream meta_file(dir + "/meta.json");
    if (!meta_file) {
        problems.push_back("meta.json is missing");
    } else {
        nlohmann::json meta = nlohmann::json::parse(meta_file, nullptr, false);
        if (meta.is_discarded() || !meta.is_object()) {
            problems.push_back("meta.json is not a JSON object");
        } else {
            if (meta.contains("nonce") && meta["nonce"].is_string()) {
                out.nonce = meta["nonce"].get<std::string>();
            }
            if (meta.contains("kernel_seconds") && meta["kernel_seconds"].is_object()) {
                for (auto& [name, value] : meta["kernel_seconds"].items()) {
                    if (value.is_number() && std::isfinite(value.get<double>()) &&
                        name.size() < 64) {
                        out.kernel_seconds[name] = value.get<double>();
                    }
                }
            }
        }
    }
    return problems.size() == before;
}

double heldout_loss(const TaskSpec& task, const std::vector<float>& params,
                    const std::vector<int>& heldout_tokens) {
    const GPTConfig config{task.model.vocab_size, task.model.context, task.model.d_model,
                           task.model.layers, task.model.heads};
    const int B = task.train.batch, T = task.model.context;
    GPT model;
    gpt_create(model, config, B, T, reference_kernels());
    model.params_memory = params;
    std::vector<int> inputs(B * T), targets(B * T);
    double total = 0;
    for (int batch = 0; batch < task.eval_batches; batch++) {
        for (int b = 0; b < B; b++) {
            const size_t start = ((size_t)batch * B + b) * T;
            for (int t = 0; t < T; t++) {
                inputs[b * T + t] = heldout_tokens[start + t];
                targets[b * T + t] = heldout_tokens[start + t + 1];
            }
        }
        gpt_forward(model, inputs.data(), targets.data());
        total += model.mean_loss;
    }
    return total / task.eval_batches;
}

Verdict verify_run(const TaskSpec& task, const ReferenceRun& reference,
                   const RunOutputs& submission, const std::string& expected_nonce,
                   const std::vector<int>& heldout_tokens) {
    Verdict v;
    Comparison& c = v.comparison;
    const Tolerances& tol = task.tolerances;

    if (submission.nonce != expected_nonce) {
        v.reasons.push_back(
            "meta.json does not carry this run's nonce: the outputs were not "
            "produced by this run");
    }
    for (size_t step = 0; step < submission.losses.size(); step++) {
        double d = std::fabs((double)submission.losses[step] - reference.outputs.losses[step]);
        if (d > c.max_loss_diff || std::isnan(d)) {
            c.max_loss_diff = d;
            c.worst_step = (int)step;
        }
    }
    if (c.max_loss_diff > tol.loss_abs) {
        v.reasons.push_back("loss trajectory differs from the reference: |delta| = " +
                            fmt_g(c.max_loss_diff) + " nats at step " +
                            std::to_string(c.worst_step) + " > tolerance " + fmt_g(tol.loss_abs));
    }

    c.heldout_reference = reference.heldout;
    c.heldout_submission = heldout_loss(task, submission.checkpoint.params, heldout_tokens);
    c.heldout_diff = std::fabs(c.heldout_submission - c.heldout_reference);
    if (!(c.heldout_diff <= tol.heldout_abs)) {
        v.reasons.push_back(
            "held-out loss of the final checkpoint, recomputed by the harness, is " +
            fmt_g(c.heldout_submission) + " vs reference " + fmt_g(c.heldout_reference) +
            " (|delta| " + fmt_g(c.heldout_diff) + " > tolerance " + fmt_g(tol.heldout_abs) + ")");
    }

    const double update_norm =
        l2_distance(reference.outputs.checkpoint.params, reference.init_params);
    const double distance =
        l2_distance(submission.checkpoint.params, reference.outputs.checkpoint.params);
    c.weight_distance = update_norm > 0 ? distance / update_norm : distance;
    if (!(c.weight_distance <= tol.weights_rel)) {
        v.reasons.push_back("final weights differ from the reference: relative distance " +
                            fmt_g(c.weight_distance) + " of the training update > tolerance " +
                            fmt_g(tol.weights_rel));
    }
    v.valid = v.reasons.empty();
    return v;
}

}  // namespace trainopt
