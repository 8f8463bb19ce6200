#!/usr/bin/env bash
# Per-step loss deviation of a trainer from the baseline, without the harness: runs both
# trainers on a task with each seed and prints, per seed, the largest |loss - loss_ref| over
# the steps, the first step where it exceeds the threshold, and the deviation at the last step.
# For checking a task's stability before calibrating it (docs/tolerances.md).
#   scripts/loss-deviation.sh BASELINE_TRAINER TRAINER TASK.toml SEED...
# Environment: THRESHOLD (1e-4), THREADS (1), TRAINOPT (build/harness/trainopt).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 4 ]; then
  echo "usage: $0 BASELINE_TRAINER TRAINER TASK.toml SEED..." >&2
  exit 2
fi
base=$1 sub=$2 task=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${TRAINOPT:-build/harness/trainopt}" data "$task" --out "$work/data" > /dev/null
echo "seed max_deviation at_step first_step_above_${THRESHOLD:-1e-4} final_deviation"
for seed in "$@"; do
  for which in base sub; do
    bin=$base
    [ "$which" = sub ] && bin=$sub
    "$bin" --task "$task" --data "$work/data" --seed "$seed" --out "$work/$which" \
      --nonce x --threads "${THREADS:-1}" > "$work/$which.log" 2>&1
  done
  paste -d, "$work/base/losses.csv" "$work/sub/losses.csv" | awk -F, -v seed="$seed" \
    -v threshold="${THRESHOLD:-1e-4}" '
    NR > 1 {
      d = $2 - $4; if (d < 0) d = -d
      if (d > max) { max = d; at = $1 }
      if (first == "" && d > threshold) first = $1
      last = d
    }
    END { printf "%s %.3g %s %s %.3g\n", seed, max, at, (first == "" ? "-" : first), last }'
  rm -rf "$work/base" "$work/sub"
done
