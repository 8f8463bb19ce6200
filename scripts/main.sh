#!/usr/bin/env bash
# The main job: install, build, and score the shipped example submission (OpenBLAS + oneTBB)
# against the naive baseline on the default suite. Reports land in results/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh trainopt
mkdir -p results
build/harness/trainopt score submissions/blas-tbb --suite default --reps "${REPS:-3}" \
  --json results/example.json --md results/example.md --html results/example.html
