#!/usr/bin/env bash
# Measures how much the machine's FMA ceiling (scoring/machine_peak.cpp, the speed-of-light
# backstop's bound) moves: N measurements in each of three conditions, interleaved so slow drifts
# of a shared machine hit all three alike, then min / median / max and the spread per condition
# and overall. The backstop's margin (kBackstopMargin in scoring/report.h) must cover the spread
# with room; docs/scoring.md has the numbers.
#
#   quiet    whatever else the machine is doing
#   cpu      one busy loop per CPU competing for every core
#   memory   the naive baseline trainer (memory-latency bound) training in a loop
#
# The OpenBLAS sgemm peak (the reports' speed-of-light column) is measured alongside, to compare.
# Usage: scripts/measure-peak-margin.sh [BUILD_DIR] [N] [RAW_OUT]
# RAW_OUT, if given, keeps every measurement (condition, then measure_peak's JSON line).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; n=${2:-30}; raw_out=${3:-}
peak=$build/tests/measure_peak
trainer=$build/baseline/trainopt-train
[ -x "$peak" ] || { echo "missing $peak: build the project first" >&2; exit 1; }
work=$(mktemp -d)
load_pids=()
stop_load() {
  for pid in "${load_pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${load_pids[@]}"; do wait "$pid" 2> /dev/null || true; done
  load_pids=()
}
trap 'stop_load; [ -z "$raw_out" ] || cp "$work/all.txt" "$raw_out"; rm -rf "$work"' EXIT

"$build/harness/trainopt" data tasks/default/small.toml --out "$work/data" > /dev/null
start_load() {
  case $1 in
    cpu)
      for _ in $(seq 1 "$(nproc)"); do
        bash -c 'while :; do :; done' &
        load_pids+=($!)
      done ;;
    memory)
      bash -c "while :; do '$trainer' --task tasks/default/small.toml --data '$work/data' \
        --seed 1 --out '$work/out' --nonce x > /dev/null 2>&1; done" &
      load_pids+=($!) ;;
  esac
  sleep 0.5  # let the load get going
}

for i in $(seq 1 "$n"); do
  for condition in quiet cpu memory; do
    start_load "$condition"
    line=$("$peak")
    stop_load
    echo "$condition $line" >> "$work/all.txt"
  done
  printf '\r%d/%d' "$i" "$n" >&2
done
echo >&2

# each line: the condition, then measure_peak's JSON; the numbers are pulled out with sed
summary() {  # $1: label, $2: decimals, stdin: one number per line
  sort -g | awk -v label="$1" -v d="${2:-1}" '{ v[NR] = $1 } END {
    med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    f = "%-12s n=%-3d min %8." d "f  median %8." d "f  max %8." d "f  max/min %.3f  median/min %.3f\n"
    printf f, label, NR, v[1], med, v[NR], v[NR] / v[1], med / v[1] }'
}
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"; }
echo "FMA ceiling, GFLOP/s ($(sed -n 's/.*"isa": "\([^"]*\)".*"threads": \([0-9]*\).*/\1, \2 threads/p' "$work/all.txt" | sort | uniq -c | tr -s ' ' | paste -sd';'))"
for condition in quiet cpu memory; do
  grep "^$condition " "$work/all.txt" | field fma_ceiling_gflops | summary "  $condition"
done
field fma_ceiling_gflops < "$work/all.txt" | summary "  all"
echo "measurement time, s"
field seconds < "$work/all.txt" | summary "  all" 3
echo "OpenBLAS sgemm peak, GFLOP/s"
for condition in quiet cpu memory; do
  grep "^$condition " "$work/all.txt" | field sgemm_gflops | summary "  $condition"
done
