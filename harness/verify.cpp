#include "harness/verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "harness/safe_file.h"
#include "kernels/gpt.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

// v with `digits` significant digits ("%.*g").
std::string fmt_g(double v, int digits) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*g", digits, v);
    return buf;
}

// A tolerance or a deviation: "1e-05", "8.1e-05", "0.65".
std::string fmt_short(double v) {
    return fmt_g(v, 2);
}

// "A vs reference B" with at least 6 significant digits, and as many more as it takes for the
// two to differ when they do ("2.35812 vs reference 2.35804", never "2.358 vs 2.358").
std::string versus(double submission, double reference) {
    int digits = 6;
    while (digits < 17 && submission != reference &&
           fmt_g(submission, digits) == fmt_g(reference, digits))
        digits++;
    return fmt_g(submission, digits) + " vs reference " + fmt_g(reference, digits);
}

// The farthest parameter tensors first; a NaN distance is the farthest of all.
void sort_farthest_first(std::vector<TensorDistance>& tensors) {
    std::stable_sort(tensors.begin(), tensors.end(),
                     [](const TensorDistance& a, const TensorDistance& b) {
                         if (std::isnan(a.rel) != std::isnan(b.rel)) return std::isnan(a.rel);
                         return a.rel > b.rel;
                     });
}

// Why the loss trajectory is over the tolerance: the worst step and the first one over it, each
// with both losses.
std::string trajectory_reason(const Comparison& c, const std::vector<float>& submission,
                              const std::vector<float>& reference, double tolerance) {
    auto losses = [&](int step) { return versus(submission[step], reference[step]); };
    std::string reason =
        "loss trajectory differs from the reference: |delta| = " + fmt_short(c.max_loss_diff) +
        " nats at step " + std::to_string(c.worst_step) + " > tolerance " + fmt_short(tolerance) +
        " (" + losses(c.worst_step);
    if (c.first_step_over == c.worst_step || c.first_step_over < 0)
        return reason + "; the first step over the tolerance)";
    return reason + ", the worst step); first over the tolerance at step " +
           std::to_string(c.first_step_over) + ": |delta| = " + fmt_short(c.first_diff_over) +
           " nats (" + losses(c.first_step_over) + ")";
}

constexpr double kReadDeadlineSeconds = 30;

// What the harness takes from meta.json: the nonce, and the self-reported kernel times.
struct Meta {
    std::string nonce;
    std::map<std::string, double> kernel_seconds;
};

Result<Meta> parse_meta(const std::string& text) {
    nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded() || !json.is_object()) return failure("meta.json is not a JSON object");
    Meta meta;
    if (json.contains("nonce") && json["nonce"].is_string()) {
        meta.nonce = json["nonce"].get<std::string>();
    }
    if (json.contains("kernel_seconds") && json["kernel_seconds"].is_object()) {
        for (auto& [name, value] : json["kernel_seconds"].items()) {
            if (value.is_number() && std::isfinite(value.get<double>()) && name.size() < 64 &&
                meta.kernel_seconds.size() < 64) {
                meta.kernel_seconds[terminal_safe_line(name)] = value.get<double>();
            }
        }
    }
    return meta;
}

Result<std::vector<float>> read_losses(const std::string& dir, const TaskSpec& task) {
    Result<std::string> text =
        read_file_beneath(dir, "losses.csv", {output_caps(task).losses_csv, kReadDeadlineSeconds});
    if (!text) return failure(text.error());
    return parse_losses(*text, task.train.steps);
}

Result<Checkpoint> read_final_checkpoint(const std::string& dir, const TaskSpec& task) {
    Result<std::string> bytes =
        read_file_beneath(dir, "final.ckpt", {output_caps(task).final_ckpt, kReadDeadlineSeconds});
    if (!bytes) return failure(bytes.error());
    return parse_checkpoint(*bytes, gpt_config_of(task), task.train.steps);
}

Result<Meta> read_meta(const std::string& dir, const TaskSpec& task) {
    Result<std::string> text =
        read_file_beneath(dir, "meta.json", {output_caps(task).meta_json, kReadDeadlineSeconds});
    if (!text) return failure(text.error());
    return parse_meta(*text);
}

}  // namespace

CollectedOutputs read_run_outputs(const std::string& dir, const TaskSpec& task) {
    CollectedOutputs collected;
    RunOutputs& out = collected.outputs;
    // a problem with one output does not stop the others being read
    if (Result<std::vector<float>> losses = read_losses(dir, task))
        out.losses = std::move(*losses);
    else
        collected.problems.push_back(losses.error());
    if (Result<Checkpoint> checkpoint = read_final_checkpoint(dir, task))
        out.checkpoint = std::move(*checkpoint);
    else
        collected.problems.push_back(checkpoint.error());
    if (Result<Meta> meta = read_meta(dir, task)) {
        out.nonce = std::move(meta->nonce);
        out.kernel_seconds = std::move(meta->kernel_seconds);
    } else {
        collected.problems.push_back(meta.error());
    }
    return collected;
}

Result<SegmentOutputs> read_segment_outputs(const std::string& dir, const TaskSpec& task,
                                            const StepWindow& segment) {
    const OutputCaps caps = output_caps(task);
    SegmentOutputs out;
    Result<std::string> text =
        read_file_beneath(dir, "losses.csv", {caps.losses_csv, kReadDeadlineSeconds});
    if (!text) return failure(text.error());
    Result<std::vector<float>> losses = parse_losses(*text, segment.start, segment.steps);
    if (!losses) return failure(losses.error());
    out.losses = std::move(*losses);
    Result<std::string> bytes =
        read_file_beneath(dir, "state.bin", {caps.state_bin, kReadDeadlineSeconds});
    if (!bytes) return failure(bytes.error());
    Result<TrainingState> end = parse_training_state(*bytes, gpt_config_of(task), "state.bin");
    if (!end) return failure(end.error());
    if (end->step != segment.start + segment.steps) {
        return failure("state.bin says " + std::to_string(end->step) + " steps were taken, not " +
                       std::to_string(segment.start + segment.steps));
    }
    out.end = std::move(*end);
    Result<Meta> meta = read_meta(dir, task);
    if (!meta) return failure(meta.error());
    out.nonce = std::move(meta->nonce);
    return out;
}

double heldout_loss(const TaskSpec& task, const std::vector<float>& params,
                    const std::vector<int>& heldout_tokens) {
    const GPTConfig config = gpt_config_of(task);
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

double final_training_loss(const std::vector<float>& losses) {
    const size_t n = std::min<size_t>(10, losses.size());
    if (n == 0) return 0;
    double sum = 0;
    for (size_t i = losses.size() - n; i < losses.size(); i++) sum += losses[i];
    return sum / (double)n;
}

Verification verify_run(const TaskSpec& task, const ReferenceRun& reference,
                        const RunOutputs& submission, const std::string& expected_nonce,
                        const std::vector<int>& heldout_tokens) {
    Verification v;
    Comparison& c = v.comparison;
    const Tolerances& tol = task.tolerances;
    c.compared = true;
    c.final_loss_reference = final_training_loss(reference.outputs.losses);
    c.final_loss_submission = final_training_loss(submission.losses);
    c.reference_losses = reference.outputs.losses;
    c.submission_losses = submission.losses;

    if (submission.nonce != expected_nonce) {
        v.reasons.push_back(
            "meta.json does not carry this run's nonce: the outputs were not "
            "produced by this run");
    }
    const bool whole_run = task.verify.check == CheckKind::trajectory;
    for (size_t step = 0; step < submission.losses.size(); step++) {
        double d = std::fabs((double)submission.losses[step] - reference.outputs.losses[step]);
        if ((d > c.max_loss_diff || std::isnan(d)) && !std::isnan(c.max_loss_diff)) {
            c.max_loss_diff = d;
            c.worst_step = (int)step;
        }
        if (whole_run && c.first_step_over < 0 && !(d <= tol.loss_abs)) {
            c.first_step_over = (int)step;
            c.first_diff_over = d;
        }
    }
    if (whole_run && !(c.max_loss_diff <= tol.loss_abs)) {
        v.reasons.push_back(
            trajectory_reason(c, submission.losses, reference.outputs.losses, tol.loss_abs));
    }

    c.heldout_reference = reference.heldout;
    c.heldout_submission = heldout_loss(task, submission.checkpoint.params, heldout_tokens);
    c.heldout_diff = std::fabs(c.heldout_submission - c.heldout_reference);
    if (whole_run && !(c.heldout_diff <= tol.heldout_abs)) {
        v.reasons.push_back(
            "held-out loss of the final checkpoint, recomputed by the harness, is " +
            versus(c.heldout_submission, c.heldout_reference) + " (|delta| " +
            fmt_short(c.heldout_diff) + " > tolerance " + fmt_short(tol.heldout_abs) + ")");
    }
    // On a chaotic task legitimate runs end on either side of the reference, by up to 0.38 nats
    // when one of them hit a late loss spike; the windows check the training, and the band only
    // rejects a model worse than the reference's by more than it (docs/security.md, "Chaotic
    // tasks").
    const double heldout_excess = c.heldout_submission - c.heldout_reference;
    if (!whole_run && !(heldout_excess <= tol.heldout_band)) {
        v.reasons.push_back(
            "held-out loss of the final checkpoint, recomputed by the harness, is " +
            versus(c.heldout_submission, c.heldout_reference) + ": worse by " +
            fmt_short(heldout_excess) + " > the task's quality band " +
            fmt_short(tol.heldout_band));
    }

    c.weight_distance = relative_distance(
        submission.checkpoint.params, reference.outputs.checkpoint.params, reference.init_params);
    if (whole_run) {
        c.tensors =
            tensor_distances(submission.checkpoint.params, reference.outputs.checkpoint.params,
                             reference.init_params, gpt_config_of(task));
        sort_farthest_first(c.tensors);
    }
    if (whole_run && !(c.weight_distance <= tol.weights_rel)) {
        std::string reason = "final weights differ from the reference: relative distance " +
                             fmt_g(c.weight_distance, 3) + " of the training update > tolerance " +
                             fmt_short(tol.weights_rel);
        if (!c.tensors.empty()) {
            const TensorDistance& farthest = c.tensors.front();
            reason += "; the farthest tensor is " + farthest.slice.name() + ", at " +
                      fmt_g(farthest.rel, 3) + "; its gradient comes from " +
                      gradient_kernel_of(farthest.slice.tensor);
        }
        v.reasons.push_back(reason);
    }
    return v;
}

}  // namespace trainopt
