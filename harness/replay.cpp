#include "harness/replay.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "harness/process.h"
#include "kernels/gpt.h"

namespace trainopt {

namespace {

std::string range_name(const StepWindow& w) {
    return "steps " + std::to_string(w.start) + "-" + std::to_string(w.start + w.steps - 1);
}

std::string fmt(const char* format, double a, double b) {
    char buf[64];
    snprintf(buf, sizeof(buf), format, a, b);
    return buf;
}

bool same_bits(float a, float b) {
    return std::memcmp(&a, &b, sizeof(float)) == 0;
}

// The first step of `segment` whose replayed loss differs in any bit from the timed run's.
int first_differing_step(const StepWindow& segment, const std::vector<float>& replayed,
                         const std::vector<float>& timed) {
    for (int i = 0; i < segment.steps; i++) {
        if (!same_bits(replayed[i], timed[segment.start + i])) return segment.start + i;
    }
    return -1;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The index of the window holding `segment`, a single step, or -1 when no window does.
int window_of(const StepWindow& segment, const std::vector<StepWindow>& windows) {
    if (segment.steps != 1) return -1;
    for (size_t i = 0; i < windows.size(); i++) {
        if (windows[i].start <= segment.start &&
            segment.start < windows[i].start + windows[i].steps)
            return (int)i;
    }
    return -1;
}

// Why a window's deviation from the reference is over the task's step tolerances, if it is.
std::vector<std::string> window_reasons(const WindowDeviation& d, const Tolerances& tol) {
    std::vector<std::string> reasons;
    const std::string where = "in the window of " + range_name(d.window) +
                              ", each step recomputed with the reference kernels from the state "
                              "the submission was in before it, ";
    if (!d.frozen_tensor.empty()) {
        reasons.push_back(where + "the reference's update leaves " + d.frozen_tensor +
                          " exactly where it was although its gradient is not zero: the "
                          "optimizer moments the submission wrote freeze it");
    } else if (!(d.tensor_rel < kUntrainedTensorRel)) {
        char buf[200];
        snprintf(buf, sizeof(buf),
                 "%s was not trained: the submission reproduced less than a tenth of the "
                 "reference's update of it (relative distance %.3g)",
                 d.worst_tensor.c_str(), d.tensor_rel);
        reasons.push_back(where + buf);
    }
    if (!(d.min_adam_step >= kMinAdamStep)) {
        char buf[300];
        snprintf(buf, sizeof(buf),
                 "the reference's AdamW step from the submission's state at step %d does not "
                 "train: RMS of m_hat / (sqrt(v_hat) + eps) is %.3g < %.3g (zero gradients, or a "
                 "second moment that dwarfs them: a state training cannot continue from)",
                 d.weakest_step, d.min_adam_step, kMinAdamStep);
        reasons.push_back(where + buf);
    }
    if (!(d.max_loss_diff <= tol.step_loss_abs)) {
        char buf[200];
        snprintf(buf, sizeof(buf),
                 "the loss differs by %.3g nats at step %d > tolerance %.3g (step_loss_abs)",
                 d.max_loss_diff, d.worst_step, tol.step_loss_abs);
        reasons.push_back(where + buf);
    }
    if (!(d.state_rel() <= tol.step_state_rel)) {
        char buf[200];
        snprintf(buf, sizeof(buf),
                 "the state after it differs: relative distance %.3g (weights %.3g, first "
                 "moments %.3g, second moments %.3g) > tolerance %.3g (step_state_rel)",
                 d.state_rel(), d.params_rel, d.m_rel, d.v_rel, tol.step_state_rel);
        reasons.push_back(where + buf);
    }
    return reasons;
}

constexpr const char* kReproducible =
    " (a trainer must be bit-reproducible: the same seed, threads and start state give the same "
    "bits; docs/writing-a-submission.md)";

}  // namespace

Result<ReplayCheck> replay_and_check_windows(const HarnessContext& ctx,
                                             const TrainerBuild& submission, const TaskSpec& task,
                                             const TaskData& data, uint64_t seed,
                                             const RunOutputs& timed, uint64_t random) {
    const GPTConfig config = gpt_config_of(task);
    const int total = task.train.steps;
    const std::vector<StepWindow> windows =
        pick_windows(total, task.verify.windows, task.verify.window_steps, random);
    ReplayCheck check;
    // each window's deviation, folded from its steps' as they are checked one at a time
    std::vector<WindowDeviation> deviations(windows.size());
    for (size_t i = 0; i < windows.size(); i++) deviations[i].window = windows[i];
    TrainingState state = initial_state(config, seed);
    for (const StepWindow& segment : replay_segments(single_steps(windows), total)) {
        const std::string who = "the submission's replay of " + range_name(segment);
        SegmentRequest request;
        request.until = segment.start + segment.steps;
        if (segment.start > 0) {
            request.state = training_state_file(config, state.step, state.params.data(),
                                                state.m.data(), state.v.data());
        }
        const std::string nonce = random_nonce();
        Result<TrainerRun> run = run_trainer(ctx, submission, task, data, seed, nonce, &request);
        if (interrupted()) {
            if (run) remove_run(*run);
            return failure("interrupted");
        }
        if (!run) {
            check.reasons.push_back(who + " did not start: " + run.error());
            return check;
        }
        check.segments++;
        Status finished = check_run_finished(*run, who);
        Result<SegmentOutputs> outputs =
            finished ? (run->collect_problems.empty()
                            ? read_segment_outputs(run->export_dir, task, segment)
                            : Result<SegmentOutputs>(failure(run->collect_problems.front())))
                     : Result<SegmentOutputs>(failure(finished.error()));
        remove_run(*run);
        if (!outputs) {
            check.reasons.push_back(
                (finished ? who + " gave unusable outputs: " : std::string()) + outputs.error() +
                " (step-local verification runs the trainer on segments of the run: --resume, "
                "--until; contract/trainer_io.h)");
            return check;
        }
        if (outputs->nonce != nonce) {
            check.reasons.push_back(who + ": meta.json does not carry this run's nonce");
            return check;
        }
        if (Status plausible = check_moments_plausible(outputs->end, task.train); !plausible) {
            check.reasons.push_back("the state " + who +
                                    " ends in is not one AdamW reaches: " + plausible.error());
            return check;
        }
        if (int step = first_differing_step(segment, outputs->losses, timed.losses); step >= 0) {
            check.reasons.push_back(who + " does not reproduce the timed run: the loss at step " +
                                    std::to_string(step) + " is " +
                                    fmt("%.9g, the timed run's %.9g",
                                        outputs->losses[step - segment.start], timed.losses[step]) +
                                    kReproducible);
            return check;
        }
        const int w = window_of(segment, windows);
        if (w < 0 && segment.start > 0) {
            // a segment after a window must continue from the state it was given, not from one
            // it recomputed itself: its first loss is checked against the reference's from that
            // state, so a window's checked step cannot be dropped again in the next segment
            const float from_given = reference_loss(task, data.train, seed, state);
            const double diff = std::fabs((double)outputs->losses.front() - from_given);
            if (!(diff <= task.tolerances.step_loss_abs)) {
                check.reasons.push_back(
                    who + " does not continue from the state it was given: its loss at step " +
                    std::to_string(segment.start) + " is " +
                    fmt("%.9g, the reference's from that state %.9g", outputs->losses.front(),
                        from_given) +
                    " (step_loss_abs)");
                return check;
            }
        }
        if (w >= 0) {
            include_step(deviations[w], check_step(task, data.train, seed, state,
                                                   outputs->losses.front(), outputs->end));
            const bool window_done = segment.start + 1 == windows[w].start + windows[w].steps;
            const std::vector<std::string> reasons = window_reasons(deviations[w], task.tolerances);
            if (window_done || !reasons.empty()) check.windows.push_back(deviations[w]);
            for (const std::string& reason : reasons) check.reasons.push_back(reason);
            if (!check.reasons.empty()) return check;
        }
        state = std::move(outputs->end);
    }
    if (!same_bits(state.params, timed.checkpoint.params)) {
        check.reasons.push_back(
            "the submission's replay in segments ends in other weights than its timed run's "
            "final checkpoint" +
            std::string(kReproducible));
    }
    return check;
}

}  // namespace trainopt
