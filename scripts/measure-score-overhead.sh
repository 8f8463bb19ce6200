#!/usr/bin/env bash
# Measures where a score's wall time goes: runs `trainopt score SUBMISSION --reps R` twice with a
# fresh build cache, first building the trainer (the cache cold), then reusing it (warm), and
# prints each report's phase line (setup, build, machine, task data, timed runs, verification,
# other) with the share of the wall time spent in timed runs, the only part a score measures.
# The target (docs/scoring.md, "Reports"): at least 80% in timed runs.
# Usage: scripts/measure-score-overhead.sh [SUBMISSION] [SUITE] [REPS] [SEED]
set -uo pipefail
cd "$(dirname "$0")/.."
sub=${1:-submissions/blas-tbb}; suite=${2:-default}; reps=${3:-3}; seed=${4:-7}
trainopt=build/harness/trainopt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # label, extra options...
  local label=$1; shift
  local started=$SECONDS
  "$trainopt" score "$sub" --suite "$suite" --reps "$reps" --seed "$seed" "$@" \
    > "$work/$label.log" 2>&1
  local rc=$?
  # the report's last paragraph: "wall time N s: timed runs N s (P%), build N s, ..."
  local phases
  phases=$(sed -n '/^wall time /,/^$/p' "$work/$label.log" | tr '\n' ' ')
  echo "$label (exit $rc, $((SECONDS - started)) s by the shell): ${phases:-no phase line}"
}
echo "trainopt score $sub --suite $suite --reps $reps --seed $seed on $(nproc) cores, $(date -u +%F)"
run "build cache cold" --build-cache "$work/cache"
run "build cache warm" --build-cache "$work/cache"
