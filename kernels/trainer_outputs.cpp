#include "kernels/trainer_outputs.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/checkpoint.h"

namespace trainopt {

std::string write_trainer_outputs(const std::string& out_dir, const std::vector<float>& losses,
                                  const GPTConfig& config, const std::vector<float>& params,
                                  const TrainerRunInfo& info) {
    FILE* f = fopen((out_dir + "/losses.csv").c_str(), "w");
    if (f == nullptr) return "cannot write " + out_dir + "/losses.csv";
    fprintf(f, "step,loss\n");
    for (size_t step = 0; step < losses.size(); step++)
        fprintf(f, "%zu,%.9g\n", step, losses[step]);
    if (fclose(f) != 0) return "cannot write " + out_dir + "/losses.csv";

    const int steps = (int)losses.size();
    std::string error =
        write_checkpoint(out_dir + "/final.ckpt", config, steps, params.data(), params.size());
    if (!error.empty()) return error;

    nlohmann::json meta;
    meta["nonce"] = info.nonce;
    meta["steps"] = steps;
    meta["seed"] = info.seed;
    meta["task"] = info.task_name;
    meta["train_seconds"] = info.train_seconds;
    for (int i = 0; i < static_cast<int>(KernelId::count); i++) {
        meta["kernel_seconds"][kKernelNames[i]] = info.profile.seconds[i];
    }
    std::ofstream out(out_dir + "/meta.json");
    out << meta.dump(2) << "\n";
    if (!out) return "cannot write " + out_dir + "/meta.json";
    return "";
}

}  // namespace trainopt
