#!/usr/bin/env bash
# Measures `trainopt ci --previous` on this machine from a few long runs of a version against
# itself: the false-alarm rate and the power for slowdowns of 5%, 10% and 20% over thousands of
# replayed runs (docs/ci.md, "Measured on this machine").
#
#   scripts/ci-replay.sh SUBMISSION TRACES [-- CI OPTIONS...]
#   scripts/ci-replay.sh submissions/expert 2 -- --suite default
#
# Each trace is one `trainopt ci SUBMISSION --previous SUBMISSION` with a tiny allowance
# (--max-slowdown 0.001, so the test rarely stops early) for up to 48 rounds (--budget 900): a
# long series of measured pairs of identical code. build/tests/ci_replay_study (built by
# scripts/build.sh) then replays trainopt ci's own test on those rounds, each replay from a
# random round, with the slowdowns injected into the current version's times (REPLAY_OPTIONS,
# default: trainopt ci's --budget 300 and --max-slowdown 0.05). Traces already in $OUT (default
# /tmp/ci-replay) are kept and used; TRACES=0 replays them only. scripts/ci-power.sh measures the
# same thing end to end, at about a run per 2-5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
submission=$1
traces=$2
shift 2
[ "${1:-}" = "--" ] && shift
ci_options=("$@")
out=${OUT:-/tmp/ci-replay}
mkdir -p "$out"
name=$(basename "$submission")
for ((k = 1; k <= traces; k++)); do
  n=$(ls "$out" | grep -c "^$name-trace-.*\.json$" || true)
  json="$out/$name-trace-$((n + 1)).json"
  build/harness/trainopt ci "$submission" --previous "$submission" --max-slowdown 0.001 \
    --max-rounds 48 --budget 900 --json "$json" "${ci_options[@]}" \
    > "${json%.json}.log" 2>&1 || true
  rounds=$(grep -o '"rounds": [0-9]*' "$json" 2>/dev/null | tail -n 1 | awk '{print $2}')
  echo "trace $json: ${rounds:-no} rounds"
done
read -r -a replay_options <<< "${REPLAY_OPTIONS:---budget 300 --max-slowdown 0.05}"
build/tests/ci_replay_study "${replay_options[@]}" "$out/$name"-trace-*.json
