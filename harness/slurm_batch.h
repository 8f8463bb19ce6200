// `trainopt batch --slurm`: the batch as a Slurm job array (docs/batch.md, "Slurm"). The batch
// (its submissions, its seed) is recorded in OUT's database first; one array task per
// submission still to score runs `trainopt batch SUBMISSION --retime-every 0` on an exclusive
// node (timing needs the whole machine), which calibrates that node's own baseline and writes
// the reports to OUT/shards/POSITION/ with its database on the node's local disk (SQLite's WAL
// does not work across hosts); a merge job that runs after the array records every shard's
// report in OUT's database and writes the leaderboard.
#pragma once

#include <string>
#include <vector>

#include "contract/result.h"
#include "harness/batch.h"

namespace trainopt {

struct SlurmOptions {
    std::vector<std::string> sbatch_lines;  // extra #SBATCH options, e.g. "--partition=cpu"
    bool submit = true;                     // false: write the scripts only
    std::string trainopt;                   // the trainopt the nodes run (default: this one)
};

struct SlurmPlan {
    std::string array_script;    // OUT/slurm/array.sbatch
    std::string merge_script;    // OUT/slurm/merge.sbatch
    std::vector<int> positions;  // the array's task ids: the submissions still to score
    std::string array_job;       // sbatch's job ids, when submitted
    std::string merge_job;
};

// Records the batch and writes (and submits) its array and merge jobs. With nothing left to
// score, writes no scripts and returns no positions.
Result<SlurmPlan> submit_slurm_batch(const BatchOptions& options, const SlurmOptions& slurm);

// The merge job: every shard's final report recorded in OUT's database; shards that did not
// finish stay to score (the same `--slurm` command submits them again).
Result<BatchOutcome> merge_slurm_shards(const BatchOptions& options);

// The command line of array task `position` (without the trainopt path): what the array
// script runs, with $SLURM_* and $TMPDIR left for the shell. Exposed for the tests.
std::vector<std::string> shard_arguments(const BatchOptions& options, const BatchRecord& batch,
                                         int position);

}  // namespace trainopt
