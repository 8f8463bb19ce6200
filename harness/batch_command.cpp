#include "harness/batch_command.h"

#include <cstdio>

#include "harness/cli_error.h"
#include "harness/slurm_batch.h"
#include "scoring/untrusted_text.h"

namespace trainopt {

namespace {

constexpr int kExitUsage = 2;

int usage_error(const std::string& message) {
    fprintf(stderr, "trainopt batch: error: %s\n", terminal_safe_line(message).c_str());
    return kExitUsage;
}

// The submissions: the positional ones, then --dir's entries, then --list's lines.
Status collect_submissions(BatchCommand& c) {
    if (!c.dir.empty()) {
        Result<std::vector<std::string>> listed = submissions_in_directory(c.dir);
        if (!listed) return failure(listed.error());
        c.options.submissions.insert(c.options.submissions.end(), listed->begin(), listed->end());
    }
    if (!c.list.empty()) {
        Result<std::vector<std::string>> listed = submissions_in_list(c.list);
        if (!listed) return failure(listed.error());
        c.options.submissions.insert(c.options.submissions.end(), listed->begin(), listed->end());
    }
    return {};
}

void print_outcome(const BatchOutcome& outcome) {
    printf("batch: %d of %d submissions scored, %d VALID\n", outcome.scored, outcome.total,
           outcome.valid);
    printf("database: %s\n", terminal_safe_line(outcome.db).c_str());
    if (!outcome.markdown.empty())
        printf("leaderboard: %s\n", terminal_safe_line(outcome.markdown).c_str());
    if (!outcome.html.empty())
        printf("leaderboard: %s\n", terminal_safe_line(outcome.html).c_str());
}

}  // namespace

int run_batch_command(BatchCommand& c) {
    if (c.options.out_dir.empty()) return usage_error("give the output directory (--out)");
    if (c.merge_shards) {
        Result<BatchOutcome> merged = merge_slurm_shards(c.options);
        if (!merged) return fail(merged.error());
        print_outcome(*merged);
        return 0;
    }
    if (Status collected = collect_submissions(c); !collected) return fail(collected.error());
    if (c.options.submissions.empty())
        return usage_error("give submissions: paths, --dir DIR or --list FILE");
    if (c.slurm) {
        SlurmOptions slurm;
        slurm.sbatch_lines = c.slurm_options;
        slurm.submit = !c.slurm_no_submit;
        Result<SlurmPlan> plan = submit_slurm_batch(c.options, slurm);
        if (!plan) return fail(plan.error());
        if (plan->positions.empty()) {
            printf("batch: every submission is scored already\n");
            return 0;
        }
        printf("slurm: %zu array tasks in %s\n", plan->positions.size(),
               terminal_safe_line(plan->array_script).c_str());
        printf("slurm: merge job in %s\n", terminal_safe_line(plan->merge_script).c_str());
        if (!plan->array_job.empty())
            printf("slurm: submitted array job %s and merge job %s\n", plan->array_job.c_str(),
                   plan->merge_job.c_str());
        return 0;
    }
    Result<BatchOutcome> outcome = run_batch(c.options);
    if (!outcome) return fail(outcome.error());
    print_outcome(*outcome);
    return 0;
}

}  // namespace trainopt
