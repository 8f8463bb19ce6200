#!/usr/bin/env bash
# Measures the evaluated agent's edit-and-check loop (docs/quickstart.md, "The baseline cache"
# and "Checking while iterating"): in a fresh workspace holding a submission's files (default:
# the example, submissions/blas-tbb, so the submission's runs take what an agent's working
# trainer takes, not the naive one's), after editing one kernel file, the wall time of
#   - `trainopt verify WS --seed S` on the suite, the baseline cache warm (an earlier verify with
#     the same seed computed the baseline's outputs), the build cache cold (the edit changed the
#     tree): target at most 60 s on an unloaded 2-core machine;
#   - `trainopt check WS` (one task, 20 steps), the baseline cache warm: target at most 10 s;
#     once after an edit (a build) and once with nothing changed (the build reused).
# The first verify and check of a workspace (cold caches) are measured too, for comparison.
# Each line gives the load average before the command: other work on the machine slows every
# number, so compare numbers taken at a similar load. The caches are private to the measurement
# (XDG_CACHE_HOME in its temporary directory), so nothing of the user's is reused or touched.
#
# Usage: scripts/measure-agent-loop.sh [--from OVERLAY] [--suite default] [--seed 4242]
#                                      [--threads N] [--keep]
# TRAINOPT=path/to/trainopt overrides build/harness/trainopt.
set -euo pipefail
cd "$(dirname "$0")/.."
trainopt=${TRAINOPT:-$PWD/build/harness/trainopt}
suite=default
seed=4242
from=$PWD/submissions/blas-tbb
threads=()
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from=$(realpath "$2"); shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --threads) threads=(--threads "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--from OVERLAY] [--suite S] [--seed N] [--threads N] [--keep]" >&2; exit 2 ;;
  esac
done
[ -x "$trainopt" ] || { echo "no trainopt at $trainopt: build it (scripts/build.sh trainopt)" >&2; exit 1; }

work=$(mktemp -d /tmp/trainopt-agent-loop-XXXXXX)
chmod 755 "$work"  # builds run as nobody and must reach the workspace
if [ "$keep" = 0 ]; then trap 'rm -rf "$work"' EXIT; fi
export XDG_CACHE_HOME=$work/cache
ws=$work/ws
"$trainopt" workspace init "$ws" > /dev/null
# the overlay's baseline/ and kernels/ files over the workspace's
for dir in baseline kernels; do
  if [ -d "$from/$dir" ]; then cp -r "$from/$dir/." "$ws/$dir/"; fi
done
kernel=$ws/kernels/submission.cpp
pristine=$(cat "$kernel")

# An honest edit of one kernel file: a comment that changes the tree, so the build cache misses.
edit() {
  printf '// edit %s\n%s\n' "$1" "$pristine" > "$kernel"
}

# measure LABEL TARGET_SECONDS COMMAND...: runs the command, prints its wall time, exit code and
# the part of it the trainer's build took (from the log), and keeps its log as $work/last.log.
step=0
measure() {
  local label=$1 target=$2
  shift 2
  local load start end code=0 build
  step=$((step + 1))
  load=$(cut -d' ' -f1 /proc/loadavg)
  start=$(date +%s.%N)
  "$@" > "$work/step$step.log" 2>&1 || code=$?
  end=$(date +%s.%N)
  cp "$work/step$step.log" "$work/last.log"
  build=$(sed -n 's/.*build: done in \([0-9.]*\) s.*/\1 s/p' "$work/last.log")
  printf '%-48s %7.1f s  (build %s; exit %d, target %s, load %s)\n' "$label" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "${build:-reused}" "$code" \
    "$target" "$load"
  if [ "$code" != 0 ] && [ "$code" != 3 ]; then
    echo "  the command failed; its log:" >&2
    tail -20 "$work/last.log" >&2
  fi
}

echo "trainopt: $trainopt; workspace from $from; suite $suite, seed $seed; $(nproc) cores;" \
  "$(date -u +%FT%TZ)"
edit 1
measure "verify --seed (cold: build, baseline runs)" - \
  "$trainopt" verify "$ws" --suite "$suite" --seed "$seed" "${threads[@]}"
edit 2
measure "verify --seed after an edit (baseline cached)" "60 s" \
  "$trainopt" verify "$ws" --suite "$suite" --seed "$seed" "${threads[@]}"
grep -q "reused its reference outputs" "$work/last.log" ||
  echo "  (the baseline's outputs were not reused: see $work/last.log)"
measure "check (first: its reference computed)" - \
  "$trainopt" check "$ws" --suite "$suite" "${threads[@]}"
edit 3
measure "check after an edit (reference cached)" "10 s" \
  "$trainopt" check "$ws" --suite "$suite" "${threads[@]}"
measure "check, nothing changed (both caches warm)" "10 s" \
  "$trainopt" check "$ws" --suite "$suite" "${threads[@]}"
grep -q "reused cached build" "$work/last.log" ||
  echo "  (the trainer was not reused: see $work/last.log)"
if [ "$keep" = 1 ]; then echo "kept: $work"; fi
