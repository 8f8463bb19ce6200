#!/usr/bin/env bash
# Measures how many submissions `trainopt batch` scores per machine-hour compared with
# sequential `trainopt score` runs at the same repetitions (so the per-task CI widths can be
# compared), on one suite (docs/batch.md, "What it saves").
#
#   scripts/measure-batch.sh [VARIANTS] [SEQUENTIAL] [-- OPTIONS...]
#   scripts/measure-batch.sh 12 4 -- --suite default --reps 3
#
# The submissions are the shipped ones (submissions/blas-tbb, submissions/expert) and VARIANTS
# generated variants of them (default 12). Each variant is a copy of a shipped submission with
# one distinct comment added, so it is a distinct tree that is built and scored on its own.
# The batch scores all of them. Sequential `score` runs cost about the same for every
# submission, so only the first SEQUENTIAL of them (default 4) are scored one by one and their
# mean time per submission is used. A warm-up batch on the test suite builds every trainer
# first, so neither timed phase builds anything: what is compared is the scoring alone. Prints
# one JSON line per phase and a summary; keeps the reports in $OUT (default
# /tmp/measure-batch).
# Needs the whole machine: run it on an otherwise idle host. WARM_UP_ONLY=1 stops after the
# warm-up, so the builds (not timed) can run while the machine is busy; the build cache keeps
# them for a later full run, as long as trainopt itself is not rebuilt in between.
set -euo pipefail
cd "$(dirname "$0")/.."
variants=${1:-12}
sequential=${2:-4}
shift $(($# > 2 ? 2 : $#))
[ "${1:-}" = "--" ] && shift
options=("$@")
[ ${#options[@]} -gt 0 ] || options=(--suite default --reps 3)
out=${OUT:-/tmp/measure-batch}
trainopt=build/harness/trainopt
rm -rf "$out"
mkdir -p "$out/subs"

# the shipped submissions and their variants, alternating
list="$out/list.txt"
echo "$PWD/submissions/blas-tbb" > "$list"
echo "$PWD/submissions/expert" >> "$list"
for i in $(seq 1 "$variants"); do
  base=$([ $((i % 2)) -eq 1 ] && echo blas-tbb || echo expert)
  dir="$out/subs/$base-variant-$i"
  cp -r "submissions/$base" "$dir"
  file=$(find "$dir" -name '*.cpp' | sort | head -n 1)
  echo "// measure-batch variant $i" >> "$file"
  echo "$dir" >> "$list"
done
total=$(wc -l < "$list")

now() { date +%s.%N; }
"$trainopt" batch --list "$list" --out "$out/warm-up" --suite test --reps 1 --retime-every 0 \
  --retime-minutes 0 > "$out/warm-up.log" 2>&1
if [ "${WARM_UP_ONLY:-0}" = 1 ]; then
  echo "{\"phase\": \"warm-up\", \"submissions\": $total}"
  exit 0
fi
start=$(now)
"$trainopt" batch --list "$list" --out "$out/batch" "${options[@]}" > "$out/batch.log" 2>&1
batch_seconds=$(echo "$(now) - $start" | bc)
echo "{\"phase\": \"batch\", \"submissions\": $total, \"seconds\": $batch_seconds}"

seq_seconds=0
n=0
while read -r sub; do
  [ $n -ge "$sequential" ] && break
  n=$((n + 1))
  start=$(now)
  "$trainopt" score "$sub" "${options[@]}" --json "$out/score-$n.json" > "$out/score-$n.log" 2>&1 || true
  s=$(echo "$(now) - $start" | bc)
  seq_seconds=$(echo "$seq_seconds + $s" | bc)
  echo "{\"phase\": \"score\", \"submission\": \"$(basename "$sub")\", \"seconds\": $s}"
done < "$list"

python3 - "$out" "$total" "$batch_seconds" "$n" "$seq_seconds" << 'EOF'
import glob, json, sys
out, total, batch_s, n, seq_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
def widths(paths):
    w = []
    for p in paths:
        r = json.load(open(p))
        for t in r.get("tasks", []):
            low, high = t.get("speedup_ci95") or (0, 0)
            if t.get("valid") and t.get("speedup"):
                w.append((high - low) / t["speedup"])
    return sum(w) / len(w) if w else float("nan")
batch_rate = total / batch_s * 3600
seq_rate = n / seq_s * 3600 if seq_s > 0 else float("nan")
print(json.dumps({
    "submissions_per_hour_batch": round(batch_rate, 2),
    "submissions_per_hour_score": round(seq_rate, 2),
    "ratio": round(batch_rate / seq_rate, 2),
    "relative_ci_width_batch": round(widths(glob.glob(out + "/batch/[0-9]*.json")), 4),
    "relative_ci_width_score": round(widths(glob.glob(out + "/score-*.json")), 4),
}))
EOF
