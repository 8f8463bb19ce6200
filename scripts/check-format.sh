#!/usr/bin/env bash
# Fails when a C++ source of the repository differs from clang-format's output (.clang-format).
# Fix with: scripts/check-format.sh --fix
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h' | grep -v '^tests/cheats/')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}" 2> /tmp/trainopt-format.$$; then
  grep -E '^[^ ].*(warning|error):' /tmp/trainopt-format.$$ | sed -E 's/:[0-9]+:[0-9]+:.*//' | sort -u | head -50
  rm -f /tmp/trainopt-format.$$
  echo "check-format: the files above are not clang-formatted (scripts/check-format.sh --fix)" >&2
  exit 1
fi
rm -f /tmp/trainopt-format.$$
echo "check-format: ${#files[@]} files formatted"
