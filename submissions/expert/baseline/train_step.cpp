#include "train_step.h"

#include <atomic>
#include <memory>
#include <vector>

#include "adamw.h"
#include "forward_backward.h"
#include "parallel_range.h"

namespace trainopt {
namespace {

// Takes update units in order until none is left, each once every replica's backward has
// completed its stage. Only the updating is timed (as adamw), not the waiting.
void run_update_units(Model& model, const TrainSpec& ts, int t, KernelProfile& profile) {
    StepProgress& progress = *model.progress;
    const int count = (int)model.replicas.size();
    const int n = (int)model.update_units.size();
    for (int u = progress.next_unit.fetch_add(1, std::memory_order_relaxed); u < n;
         u = progress.next_unit.fetch_add(1, std::memory_order_relaxed)) {
        const UpdateUnit& unit = model.update_units[u];
        int spins = 0;
        for (int r = 0; r < count; r++)
            while (progress.stages_done[r].value.load(std::memory_order_acquire) <= unit.stage)
                model.pool->backoff(spins);
        KernelTimer timer(profile, KernelId::adamw);
        adamw_range(model, ts, t, (int)unit.begin, (int)unit.end);
    }
}

}  // namespace

void start_replica_threads(Model& model) {
    if (model.replicas.size() > 1)
        model.pool = std::make_unique<fast::SpinPool>(model.replicas.size());
}

void stop_replica_threads(Model& model) {
    model.pool.reset();
}

float train_step(Model& model, const TrainSpec& ts, int t, const int* inputs, const int* targets,
                 int total_rows) {
    const int count = (int)model.replicas.size();
    std::vector<float>& sums = model.replica_loss_sums;
    auto run = [&](int r, std::atomic<int>* stages_done) {
        Replica& rep = model.replicas[r];
        const size_t offset = (size_t)rep.b0 * model.T;
        sums[r] = replica_forward(model, rep, inputs + offset, targets + offset, total_rows);
        replica_backward(model, rep, inputs + offset, targets + offset, total_rows, stages_done);
    };
    if (count == 1) {
        run(0, nullptr);
        KernelTimer timer(model.update_profile, KernelId::adamw);
        const int n = (int)model.params.size();
        parallel_range(true, n, (double)n * 2, 16384,
                       [&](int r0, int r1) { adamw_range(model, ts, t, r0, r1); });
    } else {
        StepProgress& progress = *model.progress;
        for (int r = 0; r < count; r++) progress.stages_done[r].value.store(0);
        progress.next_unit.store(0);
        model.pool->run([&](int r) {
            run(r, &progress.stages_done[r].value);
            run_update_units(model, ts, t, model.replicas[r].profile);
        });
    }
    float total = 0.0f;
    for (float s : sums) total += s;
    return total / total_rows;
}

}  // namespace trainopt
