// `trainopt batch` on the command line (harness/batch.h, harness/slurm_batch.h):
//   trainopt batch [SUBMISSION...] [--dir D] [--list F] --out OUT [--db DB] [--suite S]
//                  [--reps R] [--retime-minutes M] [--retime-every K] [--kill-factor F]
//                  [--slurm [--slurm-option O]...]
#pragma once

#include <string>
#include <vector>

#include "harness/batch.h"

namespace trainopt {

struct BatchCommand {
    BatchOptions options;          // options.submissions: the positional ones
    std::string dir;               // every entry of this directory is a submission
    std::string list;              // a file listing submissions, one a line
    bool slurm = false;            // write and submit a Slurm job array instead of running here
    bool slurm_no_submit = false;  // write the Slurm scripts only
    std::vector<std::string> slurm_options;  // extra #SBATCH lines (e.g. --partition=cpu)
    bool merge_shards = false;  // internal: merge the Slurm shards' reports into OUT's database
};

// Exit codes: 0 the batch is finished (whatever the verdicts) or submitted, 1 an error, 2 a
// usage error.
int run_batch_command(BatchCommand& command);

}  // namespace trainopt
