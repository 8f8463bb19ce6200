#!/usr/bin/env bash
# Install, check the formatting, build, and run the whole test suite (unit tests, then the end-to-end and cheat tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-format.sh
scripts/build.sh
cd build
ctest -j "$(nproc)" --output-on-failure --timeout 1200
