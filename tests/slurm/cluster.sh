#!/usr/bin/env bash
# A one-node Slurm 22.05 on localhost, for the end-to-end test of profiles/slurm.
#
#   tests/slurm/cluster.sh install   # apt-get the daemons (root; Debian/Ubuntu)
#   tests/slurm/cluster.sh start DIR # write DIR/slurm.conf, start munged, slurmctld, slurmd
#   tests/slurm/cluster.sh stop DIR  # stop them by their PID files
#
# No systemd, no cgroups, no accounting database: proctrack/linuxproc, task/none, jobs tracked
# by squeue only (MinJobAge keeps finished jobs visible long enough for Snakemake to see them).
# One fake GPU (gres.conf File=/dev/null: Slurm 22.05 drains a node whose GPU has no File=)
# lets a rule that asks for gpu=1 be scheduled. /etc/slurm/slurm.conf is linked to DIR's.
set -euo pipefail

cmd=${1:?install, start DIR or stop DIR}
dir=${2:-/tmp/embedlab-slurm}

case "$cmd" in
install)
    if ! command -v slurmctld >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
    fi
    ;;
start)
    mkdir -p "$dir"/{state,spool,log}
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 8 / 10))
    cat >"$dir/slurm.conf" <<CONF
ClusterName=embedlab
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
GresTypes=gpu
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    echo "Name=gpu File=/dev/null" >"$dir/gres.conf"
    # srun inside a job (Snakemake's jobstep executor) reads the default path, not SLURM_CONF
    mkdir -p /etc/slurm
    ln -sf "$dir/slurm.conf" /etc/slurm/slurm.conf
    ln -sf "$dir/gres.conf" /etc/slurm/gres.conf
    mkdir -p /run/munge
    chown munge:munge /run/munge
    pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -i -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 50); do
        sinfo -h -o %T 2>/dev/null | grep -qx idle && exit 0
        sleep 0.2
    done
    echo "slurm did not come up; logs in $dir/log" >&2
    sinfo >&2 || true
    exit 1
    ;;
stop)
    for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
        [[ -f $pid ]] && kill "$(cat "$pid")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: $0 install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
