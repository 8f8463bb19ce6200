#!/usr/bin/env bash
# Counts false rejections of legitimate submissions: `trainopt verify SUB --seed S` for each seed
# of a range and each submission, interleaved per seed so the baseline's outputs for a seed are
# computed once and taken from the baseline cache for the other submissions (the verification
# is the same as `score`'s). One line per run: verdict, and per task the held-out loss of the
# submission minus the baseline's (signed), the whole run's loss and weight deviations, and the
# largest step-local deviations (tasks checked "local"); then a summary per submission.
#
# Usage: scripts/measure-false-rejections.sh SUITE FIRST_SEED COUNT SUBMISSION... [-- VERIFY_OPTS]
#   e.g. scripts/measure-false-rejections.sh text 1 30 submissions/blas-tbb submissions/expert
# Reports are kept in $OUT (default: a new directory under /tmp, printed first).
# TRAINOPT=path/to/trainopt overrides build/harness/trainopt. Needs jq.
set -uo pipefail
cd "$(dirname "$0")/.."
trainopt=${TRAINOPT:-$PWD/build/harness/trainopt}
if [ $# -lt 4 ]; then
  echo "usage: $0 SUITE FIRST_SEED COUNT SUBMISSION... [-- VERIFY_OPTS]" >&2
  exit 2
fi
suite=$1 first=$2 count=$3
shift 3
subs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do subs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
command -v jq > /dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 1; }
out=${OUT:-$(mktemp -d /tmp/trainopt-false-rejections-XXXXXX)}
mkdir -p "$out"
echo "reports in $out; suite $suite, seeds $first..$((first + count - 1))"
declare -A valid invalid errors
for s in $(seq "$first" $((first + count - 1))); do
  for sub in "${subs[@]}"; do
    name=$(basename "$sub")
    json="$out/$name-$s.json"
    "$trainopt" verify "$sub" --suite "$suite" --seed "$s" --json "$json" "$@" \
      > "$out/$name-$s.log" 2>&1
    rc=$?
    case $rc in
      0) valid[$name]=$((${valid[$name]:-0} + 1)); verdict=VALID ;;
      3) invalid[$name]=$((${invalid[$name]:-0} + 1)); verdict=INVALID ;;
      *) errors[$name]=$((${errors[$name]:-0} + 1)); verdict="error (exit $rc)" ;;
    esac
    detail=""
    if [ -f "$json" ]; then
      detail=$(jq -r '[.tasks[] | "\(.name): held-out \((.submission_heldout_loss | if type == "array" then .[0] else . end) - (.baseline_heldout_loss | if type == "array" then .[0] else . end) | . * 1e6 | round / 1e6) loss \(.max_loss_diff) weights \(.max_weight_distance)" + (if .check == "local" then " window loss \(.max_window_loss_diff) state \(.max_window_state_rel)" else "" end) + (if .valid then "" else " REASONS: " + (.reasons | join("; ")) end)] | join(" | ")' "$json" 2> /dev/null)
    fi
    echo "seed $s $name: $verdict $detail"
  done
done
for sub in "${subs[@]}"; do
  name=$(basename "$sub")
  echo "$name: ${valid[$name]:-0} VALID, ${invalid[$name]:-0} INVALID, ${errors[$name]:-0} errors of $count seeds (suite $suite)"
done
