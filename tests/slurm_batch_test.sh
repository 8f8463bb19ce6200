#!/usr/bin/env bash
# trainopt batch --slurm on a single-node Slurm started here (docs/batch.md, "Slurm"): munged,
# slurmctld and slurmd on localhost with a generated slurm.conf, keys, sockets, state and logs
# in a temporary directory; a batch of two submissions (the example, a trainer that fails) goes
# through the job array and the merge job; the merged database and leaderboard are checked;
# everything started here is stopped and removed on exit.
#
# usage: slurm_batch_test.sh TRAINOPT SOURCE_DIR CACHE_HOME
# Exit 0 passed, 1 failed, 77 skipped (not root, or Slurm/munge not installed: see
# scripts/install-deps.sh).
set -euo pipefail
trainopt=$1
source_dir=$2
cache_home=${3:-}

skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root: slurmd runs the jobs and the sandbox as their user"
for tool in munged slurmctld slurmd sbatch squeue sinfo; do
  command -v "$tool" > /dev/null || skip "$tool is not installed (scripts/install-deps.sh)"
done

work=$(mktemp -d /tmp/trainopt-slurm-XXXXXX)
chmod 755 "$work"
daemons=()
cleanup() {
  for pid in "${daemons[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${daemons[@]}"; do wait "$pid" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAILED: $*"
  for log in "$work"/*.log "$work"/out/slurm/*.log; do
    [ -f "$log" ] && { echo "--- $log"; tail -n 30 "$log"; }
  done
  exit 1
}

# munge: its own key, socket and files; run as root (--force), which a test may
mkdir -m 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --foreground --force --key-file="$work/munge/munge.key" \
  --socket="$work/munge/munge.sock" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munged.log" --seed-file="$work/munge/seed" &
daemons+=($!)

# two free ports for slurmctld and slurmd
ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r ctld_port slurmd_port <<< "$ports"
host=$(hostname -s)
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" << EOF
ClusterName=trainopt-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/linear
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$work/slurm.conf"
for _ in $(seq 50); do [ -S "$work/munge/munge.sock" ] && break; sleep 0.2; done
[ -S "$work/munge/munge.sock" ] || fail "munged did not start"
slurmctld -D -i &
daemons+=($!)
slurmd -D &
daemons+=($!)
for _ in $(seq 100); do
  sinfo -h -o %T 2> /dev/null | grep -q idle && break
  sleep 0.3
done
sinfo -h -o %T | grep -q idle || fail "the node did not come up: $(sinfo 2>&1)"

# the batch: the example (VALID) and a trainer that builds in seconds and fails (INVALID)
broken="$work/subs/broken"
mkdir -p "$broken/baseline"
echo 'add_executable(trainopt-train broken.cpp)' > "$broken/baseline/CMakeLists.txt"
echo 'int main() { return 1; }' > "$broken/baseline/broken.cpp"
out="$work/out"
env ${cache_home:+XDG_CACHE_HOME=$cache_home} "$trainopt" batch --slurm \
  "$source_dir/submissions/blas-tbb" "$broken" --out "$out" --suite test --reps 2 \
  --slurm-option=--time=30 > "$work/submit.log" 2>&1 || fail "trainopt batch --slurm failed: $(cat "$work/submit.log")"
grep -q "submitted array job" "$work/submit.log" || fail "no job submitted: $(cat "$work/submit.log")"

for _ in $(seq 600); do
  [ -z "$(squeue -h 2> /dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h)" ] || fail "the jobs did not finish in 10 minutes"

grep -q "2 of 2 submissions scored, 1 VALID" "$out/slurm/merge.log" || fail "the merge did not record both"
python3 - "$out/batch.db" << 'EOF' || fail "the database does not hold the batch"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
runs = dict(db.execute("SELECT submission, verdict FROM runs"))
assert len(runs) == 2 and sorted(runs.values()) == ["INVALID", "VALID"], runs
assert db.execute("SELECT finished_at IS NOT NULL FROM batches").fetchone()[0] == 1
EOF
grep -q "000-blas-tbb.html" "$out/leaderboard.md" || fail "the leaderboard lacks the example"
echo "PASSED: a batch of 2 through slurmctld and slurmd on $host"
