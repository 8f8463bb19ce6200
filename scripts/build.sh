#!/usr/bin/env bash
# Configures and builds trainopt into build/ (Release): everything, or only the given targets
# (scripts/main.sh builds `trainopt`, which is what it runs; its test suites are not built).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j "$(nproc)" "${targets[@]}"
