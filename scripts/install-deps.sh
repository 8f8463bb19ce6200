#!/usr/bin/env bash
# Installs everything trainopt needs on Debian 12, from Debian's packages only.
set -euo pipefail
packages=(
  build-essential cmake git pkg-config binutils bubblewrap clang-format
  libopenblas-dev libtbb-dev libbenchmark-dev libgtest-dev libgmock-dev
  libspdlog-dev libfmt-dev libseccomp-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev
  libsqlite3-dev
  # check and verify compile a workspace's trainer incrementally through ccache (docs/security.md,
  # "Incremental builds"); without it they build from scratch
  ccache
  # trainopt profile's sampling (perf record -e cpu-clock); without it the profile prints the
  # per-kernel table alone
  linux-perf
  # trainopt batch --slurm (docs/batch.md); tests/slurm_batch_test.sh starts a one-node cluster
  slurmctld slurmd slurm-client munge
)
as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
