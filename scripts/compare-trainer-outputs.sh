#!/usr/bin/env bash
# Bit-identity of two trainer binaries: runs both on every given task file with seeds 1 and 2
# and compares losses.csv and final.ckpt byte for byte. Used to show that a refactor of a trainer
# (the baseline, a submission built with -DTRAINOPT_TRAINER_ONLY=ON) changes no output.
#   scripts/compare-trainer-outputs.sh OLD_TRAINER NEW_TRAINER TASK.toml... [THREADS=2]
# Exits 1 when any pair differs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
  echo "usage: $0 OLD_TRAINER NEW_TRAINER TASK.toml..." >&2
  exit 2
fi
old=$1 new=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for task in "$@"; do
  name=$(basename "$task" .toml)
  build/harness/trainopt data "$task" --out "$work/data-$name" > /dev/null
  for seed in 1 2; do
    for which in old new; do
      bin=$old
      [ "$which" = new ] && bin=$new
      "$bin" --task "$task" --data "$work/data-$name" --seed "$seed" --out "$work/$which" \
        --nonce x --threads "${THREADS:-2}" > "$work/$which.log" 2>&1
    done
    if cmp -s "$work/old/losses.csv" "$work/new/losses.csv" &&
      cmp -s "$work/old/final.ckpt" "$work/new/final.ckpt"; then
      echo "identical  $name seed $seed"
    else
      echo "DIFFERENT  $name seed $seed"
      status=1
    fi
    rm -rf "$work/old" "$work/new"
  done
done
exit $status
