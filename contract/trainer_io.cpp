#include "contract/trainer_io.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "contract/checkpoint.h"
#include "tasks/data.h"

namespace trainopt {

namespace {

constexpr size_t kMaxLossLineBytes = 40;  // "step,loss\n" with a 9-digit step and %.9g loss
constexpr size_t kMaxMetaBytes = 64 << 10;

// The state file a segment resumes from; the harness wrote it, the size is still checked first.
Result<TrainingState> read_training_state(const std::string& path, const GPTConfig& config) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return failure("cannot read the state file " + path + ": " + ec.message());
    if (size != training_state_bytes(config)) {
        return failure("the state file " + path + " is " + std::to_string(size) +
                       " bytes; the task's model needs " +
                       std::to_string(training_state_bytes(config)));
    }
    std::ifstream in(path, std::ios::binary);
    std::string bytes(size, '\0');
    if (!in.read(bytes.data(), (std::streamsize)size))
        return failure("cannot read the state file " + path);
    return parse_training_state(bytes, config, path);
}

Status write_losses(const std::string& out_dir, int first_step, const std::vector<float>& losses) {
    FILE* f = fopen((out_dir + "/losses.csv").c_str(), "w");
    if (f == nullptr) return failure("cannot write " + out_dir + "/losses.csv");
    fprintf(f, "step,loss\n");
    for (size_t i = 0; i < losses.size(); i++) fprintf(f, "%zu,%.9g\n", first_step + i, losses[i]);
    if (fclose(f) != 0) return failure("cannot write " + out_dir + "/losses.csv");
    return {};
}

Status write_meta(const std::string& out_dir, int steps, const TrainerRunInfo& info) {
    nlohmann::json meta;
    meta["nonce"] = info.nonce;
    meta["steps"] = steps;
    meta["seed"] = info.seed;
    meta["task"] = info.task_name;
    meta["train_seconds"] = info.train_seconds;
    for (const auto& [kernel, seconds] : info.kernel_seconds)
        meta["kernel_seconds"][kernel] = seconds;
    std::ofstream out(out_dir + "/meta.json");
    out << meta.dump(2) << "\n";
    if (!out) return failure("cannot write " + out_dir + "/meta.json");
    return {};
}

}  // namespace

std::expected<TrainerArgs, int> parse_trainer_args(int argc, char** argv,
                                                   const std::string& description) {
    CLI::App app{description};
    TrainerArgs args;
    app.add_option("--task", args.task_path, "task spec (TOML)")->required();
    app.add_option("--data", args.data_dir, "directory holding train.bin")->required();
    app.add_option("--seed", args.seed, "training seed (init and batch order)")->required();
    app.add_option("--out", args.out_dir, "output directory")->required();
    app.add_option("--nonce", args.nonce, "string echoed into meta.json")->required();
    app.add_option("--threads", args.threads, "cores the trainer may use");
    app.add_option("--resume", args.resume_path, "training state to start from (state.bin)");
    app.add_option("--until", args.until_step, "step to stop before (a segment run)")
        ->check(CLI::PositiveNumber);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return std::unexpected(app.exit(e));
    }
    return args;
}

Result<TrainerInputs> load_trainer_inputs(const TrainerArgs& args) {
    TrainerInputs in;
    Result<TaskSpec> task = load_task(args.task_path);
    if (!task) return failure(task.error());
    in.task = std::move(*task);
    in.config = gpt_config_of(in.task);
    Result<std::vector<int>> tokens =
        read_tokens(args.data_dir + "/train.bin", in.task.model.vocab_size);
    if (!tokens) return failure(tokens.error());
    in.train_tokens = std::move(*tokens);
    if (in.train_tokens.size() < (size_t)in.task.model.context + 2)
        return failure("train.bin is shorter than one context window");
    in.segment = args.is_segment();
    in.stop_step = args.until_step > 0 ? args.until_step : in.task.train.steps;
    if (!args.resume_path.empty()) {
        Result<TrainingState> start = read_training_state(args.resume_path, in.config);
        if (!start) return failure(start.error());
        in.start = std::move(*start);
        in.resumed = true;
        in.start_step = in.start.step;
    }
    if (in.stop_step > in.task.train.steps || in.stop_step <= in.start_step) {
        return failure("--until " + std::to_string(in.stop_step) + " is not after step " +
                       std::to_string(in.start_step) + " and within the task's " +
                       std::to_string(in.task.train.steps) + " steps");
    }
    std::error_code ec;
    std::filesystem::create_directories(args.out_dir, ec);
    if (ec) return failure("cannot create " + args.out_dir + ": " + ec.message());
    return in;
}

Status write_trainer_outputs(const std::string& out_dir, const TrainerInputs& inputs,
                             const std::vector<float>& losses, const TrainedState& state,
                             const TrainerRunInfo& info) {
    if (Status written = write_losses(out_dir, inputs.start_step, losses); !written) return written;
    const int end_step = inputs.start_step + (int)losses.size();
    Status written = inputs.segment
                         ? write_training_state(out_dir + "/state.bin", inputs.config, end_step,
                                                state.params, state.m, state.v)
                         : write_checkpoint(out_dir + "/final.ckpt", inputs.config, end_step,
                                            state.params, num_parameters(inputs.config));
    if (!written) return written;
    return write_meta(out_dir, (int)losses.size(), info);
}

Status write_trainer_outputs(const std::string& out_dir, const std::vector<float>& losses,
                             const GPTConfig& config, const std::vector<float>& params,
                             const TrainerRunInfo& info) {
    if (Status written = write_losses(out_dir, 0, losses); !written) return written;
    const int steps = (int)losses.size();
    Status written =
        write_checkpoint(out_dir + "/final.ckpt", config, steps, params.data(), params.size());
    if (!written) return written;
    return write_meta(out_dir, steps, info);
}

OutputCaps output_caps(const TaskSpec& task) {
    OutputCaps caps;
    caps.losses_csv = 64 + (size_t)task.train.steps * kMaxLossLineBytes;
    caps.final_ckpt = checkpoint_bytes(gpt_config_of(task));
    caps.state_bin = training_state_bytes(gpt_config_of(task));
    caps.meta_json = kMaxMetaBytes;
    return caps;
}

Result<std::vector<float>> parse_losses(const std::string& text, int first_step, int steps) {
    std::istringstream f(text);
    std::string line;
    if (!std::getline(f, line) || line.rfind("step,loss", 0) != 0)
        return failure("losses.csv does not start with the header step,loss");
    std::vector<float> losses;
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        const std::string row_name = "losses.csv row " + std::to_string(losses.size() + 1);
        std::istringstream row(line);
        std::string step_str, loss_str;
        if (!std::getline(row, step_str, ',') || !std::getline(row, loss_str))
            return failure(row_name + " is malformed");
        char* end = nullptr;
        const long step = strtol(step_str.c_str(), &end, 10);
        const long expected_step = first_step + (long)losses.size();
        if (*end != '\0' || step != expected_step)
            return failure(row_name + " does not hold step " + std::to_string(expected_step));
        const float loss = strtof(loss_str.c_str(), &end);
        if (end == loss_str.c_str() || *end != '\0' || !std::isfinite(loss)) {
            return failure("losses.csv has a non-finite or unreadable loss at step " +
                           std::to_string(step));
        }
        losses.push_back(loss);
        if ((int)losses.size() > steps) break;
    }
    if ((int)losses.size() != steps) {
        const std::string count =
            (int)losses.size() > steps ? "more than" : std::to_string(losses.size()) + " of";
        return failure("losses.csv has " + count + " the " + std::to_string(steps) +
                       " steps the run had to train (skipped or extra steps)");
    }
    return losses;
}

}  // namespace trainopt
