// The report of a score, shared by `score` and `batch` (harness/batch.h): the report before any
// run, a task's section from its evaluation, and the report files.
#pragma once

#include "contract/result.h"
#include "harness/evaluation.h"
#include "harness/score.h"
#include "harness/scored_suite.h"
#include "harness/trusted_inputs.h"
#include "scoring/report.h"

namespace trainopt {

// A report with what is known before anything runs (suite, sandbox, threads, seed: options.seed
// or a fresh one, machine), and the warnings so far.
ScoreReport start_report(const ScoreOptions& options, const TrustedInputs& trusted,
                         const SuiteToScore& scored, const HarnessContext& ctx);

// A task's section of the report from its finished repetitions.
TaskReport task_report_of(const TaskEvaluation& eval);

// Finalizes the report and writes every report file options asks for (JSON, Markdown, HTML),
// each atomically.
Status write_reports(const ScoreOptions& options, ScoreReport& report);

}  // namespace trainopt
