// `trainopt ci`: the previous and the current version of a submission compared directly
// (docs/ci.md). Each is built once (the build cache makes an unchanged one free), both are
// verified against the reference on the first round's seeds, then rounds of paired runs on the
// same fresh seeds, in alternating order, feed the sequential test of scoring/sequential.h until
// it decides or the time budget is spent. The naive baseline runs only in the first round.
#pragma once

#include <string>

#include "contract/result.h"
#include "harness/score.h"
#include "scoring/ci_report.h"
#include "scoring/sequential.h"

namespace trainopt {

struct CiOptions {
    ScoreOptions score;           // the current version (score.submission), suite, cores, sandbox
    std::string previous;         // a patch, overlay or workspace, "baseline", or git:REV
    SequentialOptions test;       // the allowance, alpha and rounds
    double budget_seconds = 300;  // no new round starts when it would end past this
    std::string json_path;
    std::string markdown_path;
};

// The finished comparison, its files written. Fails when the harness cannot compare (a version
// refused by intake, build or audit, an error, an interrupt); a version that fails verification
// gives a complete report with `invalid` set.
Result<CiReport> run_paired_ci(const CiOptions& options);

// Exit codes: 0 NO REGRESSION, 4 REGRESSION, 5 UNDECIDED, 3 a version INVALID.
int ci_exit_code(const CiReport& report);

// git:REV: the submission path as it was at revision REV of the git repository holding it,
// exported (git archive) into `dest`; returns the exported path. Anything else is returned as is.
Result<std::string> resolve_previous(const std::string& previous, const std::string& current,
                                     const std::string& dest);

}  // namespace trainopt
