#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (Debian's slurm-wlm and munge, run as root), for
# the test of examples/slurm/ (test/study/slurm.test.ts). Everything Slurm keeps (its
# configuration, state, spool, logs, pid files) lives in STATE_DIR.
#   local-cluster.sh start STATE_DIR   starts munged (unless it runs), slurmctld and slurmd; waits
#                                      until the node is idle; prints SLURM_CONF's path last
#   local-cluster.sh stop STATE_DIR    stops slurmctld and slurmd (and munged if start started it)
set -eu
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
stop_pid() { # pid file: TERM, then KILL after 5 s
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
if [ "$cmd" = stop ]; then
  stop_pid "$dir/slurmd.pid"
  stop_pid "$dir/slurmctld.pid"
  [ -f "$dir/munged.started" ] && stop_pid "$dir/munged.pid"
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop STATE_DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "the local Slurm cluster needs root (slurmd runs jobs as root here)" >&2; exit 1; }
for b in munge munged slurmctld slurmd sbatch sinfo; do
  command -v "$b" >/dev/null || { echo "$b is missing: install Debian's slurm-wlm and munge" >&2; exit 1; }
done
host=$(hostname -s); cpus=$(nproc); mem=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 2048 ))
mkdir -p "$dir"/{state,spool,log} /etc/munge /var/log/munge /run/munge /var/lib/munge
[ -f /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge; chmod 400 /etc/munge/munge.key
# munged may run already (an earlier test, the machine's own): use it if it answers.
if ! munge -n >/dev/null 2>&1; then
  runuser -u munge -- munged
  touch "$dir/munged.started"
  for _ in $(seq 20); do munge -n >/dev/null 2>&1 && break; sleep 0.2; done
  pgrep -n -u munge -x munged > "$dir/munged.pid"
fi
cat > "$dir/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AuthType=auth/munge
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
slurmctld
slurmd
for _ in $(seq 60); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.5; done
sinfo -h -o %t | grep -q idle || { echo "Slurm did not come up (node state: $(sinfo -h -o %t 2>&1)); logs in $dir/log: $(tail -3 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" 2>&1 | tr '\n' ' ')" >&2; exit 1; }
echo "$dir/slurm.conf"
