#!/usr/bin/env bash
# Measures the false-alarm rate of `trainopt ci` on identical code: scores SUBMISSION once as
# the reference, then runs `trainopt ci` against that report N times and counts regressions.
# Usage: scripts/ci-false-alarms.sh [SUBMISSION] [SUITE] [N] [MAX_SLOWDOWN] [REPS]
set -uo pipefail
cd "$(dirname "$0")/.."
sub=${1:-baseline}; suite=${2:-test}; n=${3:-20}; slowdown=${4:-0.10}; reps=${5:-5}
trainopt=build/harness/trainopt
work=$(mktemp -d)
if [ "$sub" = baseline ]; then
  $trainopt baseline --suite "$suite" --reps "$reps" --json "$work/ref.json" > /dev/null 2>&1 || exit 1
else
  $trainopt score "$sub" --suite "$suite" --reps "$reps" --json "$work/ref.json" > /dev/null 2>&1 || exit 1
fi
alarms=0
for i in $(seq 1 "$n"); do
  $trainopt ci "$sub" --suite "$suite" --reps "$reps" --against "$work/ref.json" \
    --max-slowdown "$slowdown" > "$work/ci-$i.log" 2>&1
  rc=$?
  if [ "$rc" -eq 4 ]; then alarms=$((alarms + 1)); fi
  grep -m1 "geometric-mean speedup changed" "$work/ci-$i.log" | sed "s/^/run $i (exit $rc): /"
done
echo "false alarms: $alarms of $n (suite $suite, $reps reps, max slowdown $slowdown)"
rm -rf "$work"
