#!/usr/bin/env bash
# Measures `trainopt ci --previous` on this machine: the false-alarm rate on identical code and
# the detection power for injected slowdowns (docs/ci.md, "Measured").
#
#   scripts/ci-power.sh SUBMISSION RUNS [SLOWDOWNS...] [-- CI OPTIONS...]
#   scripts/ci-power.sh submissions/expert 50 0 0.05 0.10 0.20 -- --suite default --budget 300
#
# A slowdown s is injected into a copy of the submission: after every training step its trainer
# spins for s times that step's duration, so it trains the same model (1 + s) times slower.
# s = 0 compares the submission with itself. Each run is one `trainopt ci VARIANT --previous
# SUBMISSION`; runs of the different slowdowns are interleaved so drift hits all of them alike.
# Prints one line per run and a table of verdicts per slowdown; keeps the JSON reports in
# $OUT (default /tmp/ci-power).
set -euo pipefail
cd "$(dirname "$0")/.."
submission=$1
runs=$2
shift 2
slowdowns=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do slowdowns+=("$1"); shift; done
[ $# -gt 0 ] && shift
ci_options=("$@")
[ ${#slowdowns[@]} -gt 0 ] || slowdowns=(0 0.05 0.10 0.20)
out=${OUT:-/tmp/ci-power}
mkdir -p "$out"
trainopt=build/harness/trainopt

variant_of() {  # slowdown -> the submission path to compare
  local s=$1
  if [ "$s" = "0" ]; then echo "$submission"; return; fi
  local dir="$out/variant-$s"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    cp -r "$submission"/. "$dir"/
    if [ ! -f "$dir/baseline/train.cpp" ]; then
      mkdir -p "$dir/baseline"
      cp baseline/train.cpp "$dir/baseline/train.cpp"
    fi
    perl -0pi -e 's/(for \(int step = loaded->start_step; step < loaded->stop_step; step\+\+\) \{)/$1\n        struct SpinAfterStep {\n            std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();\n            ~SpinAfterStep() {\n                const auto until = std::chrono::steady_clock::now() + (std::chrono::steady_clock::now() - start) * '"$s"';\n                while (std::chrono::steady_clock::now() < until) {\n                }\n            }\n        } spin_after_step;/' "$dir/baseline/train.cpp"
    grep -q spin_after_step "$dir/baseline/train.cpp" || { echo "cannot inject into $dir" >&2; exit 1; }
  fi
  echo "$dir"
}

declare -A verdicts seconds
for ((run = 1; run <= runs; run++)); do
  for s in "${slowdowns[@]}"; do
    variant=$(variant_of "$s")
    json="$out/run-$run-slowdown-$s.json"
    set +e
    "$trainopt" ci "$variant" --previous "$submission" --json "$json" "${ci_options[@]}" \
      > "$out/run-$run-slowdown-$s.log" 2>&1
    rc=$?
    set -e
    verdict=$(grep -o '"verdict": "[A-Z ]*"' "$json" 2>/dev/null | cut -d'"' -f4 || true)
    elapsed=$(grep -o '"elapsed_seconds": [0-9.]*' "$json" 2>/dev/null | awk '{print $2}' || true)
    echo "run $run slowdown $s: rc $rc ${verdict:-ERROR} in ${elapsed:-?} s"
    verdicts["$s,${verdict:-ERROR}"]=$(( ${verdicts["$s,${verdict:-ERROR}"]:-0} + 1 ))
    seconds["$s"]="${seconds[$s]:-} ${elapsed:-0}"
  done
done

echo
echo "| injected slowdown | runs | REGRESSION | NO REGRESSION | UNDECIDED | error | median s |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for s in "${slowdowns[@]}"; do
  med=$(echo ${seconds[$s]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "| $s | $runs | ${verdicts["$s,REGRESSION"]:-0} | ${verdicts["$s,NO REGRESSION"]:-0} |" \
       "${verdicts["$s,UNDECIDED"]:-0} | $(( ${verdicts["$s,ERROR"]:-0} + ${verdicts["$s,INVALID"]:-0} )) | $med |"
done
