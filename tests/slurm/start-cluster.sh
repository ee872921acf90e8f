#!/usr/bin/env bash
# Start a one-node SLURM cluster on localhost for the tests (Debian, run as root, no systemd).
#
# Installs slurmctld, slurmd, slurm-client and munge from the distribution's packages when they
# are missing, writes /etc/slurm/slurm.conf for this machine, starts munged, slurmctld and slurmd
# as daemons and waits until the node is idle.  tests/slurm/stop-cluster.sh undoes the start.
#
# No accounting daemon (slurmdbd + MariaDB): the tests read the scheduler's own records instead,
#   - `squeue --states=all` / `scontrol show job`, which keep finished jobs for MinJobAge seconds,
#   - the job-completion log (JobCompType=jobcomp/filetxt), one line per finished job, kept forever.
# The executor plugin is told to ask `squeue` for job states (profiles/slurm), which it honours
# only when MinJobAge >= 3 x its first status-check delay; MinJobAge=300 covers that.
#
# Environment: SLURM_JOBCOMP_LOG (default /var/log/slurm/jobcomp.log) is where the completion
# log goes; SLURM_START_TIMEOUT (default 60) bounds the wait for an idle node, in seconds.
set -euo pipefail

JOBCOMP_LOG=${SLURM_JOBCOMP_LOG:-/var/log/slurm/jobcomp.log}
START_TIMEOUT=${SLURM_START_TIMEOUT:-60}
CONF_DIR=/etc/slurm

die() { echo "start-cluster.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages and starts daemons)"

# 1. Packages (only when missing, so a second start is fast and needs no network).
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "SLURM is not installed and apt-get is not available"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi
[ -s /etc/munge/munge.key ] || {
    # The munge package normally creates the key at install time; make one if it did not.
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
}

# 2. Configuration for this machine.
NODE=$(hostname -s)
CPUS=$(nproc)
REAL_MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)
[ -n "$REAL_MEM" ] || die "could not read RealMemory from 'slurmd -C'"
# Leave a little memory unclaimed so that slurmd's own measurement never falls below the
# configured value (the node would otherwise be drained as "Low RealMemory").
MEM=$((REAL_MEM > 400 ? REAL_MEM - 200 : REAL_MEM))

mkdir -p "$CONF_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm \
    "$(dirname "$JOBCOMP_LOG")"
chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm "$(dirname "$JOBCOMP_LOG")"
cat >"$CONF_DIR/slurm.conf" <<CONF
# Written by tests/slurm/start-cluster.sh: a one-node test cluster on localhost.
ClusterName=localcluster
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Finished jobs stay visible to squeue/scontrol for 5 minutes (the executor's status check).
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# Plain-text record of every finished job (id, name, state, ...), read by the tests.
JobCompType=jobcomp/filetxt
JobCompLoc=${JOBCOMP_LOG}
MpiDefault=none
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
CONF

# 3. Daemons.  PID files left by an earlier run (the daemons run as `slurm` and cannot remove
# their own files under /run) would make a restart think they are still up.
for pidfile in /run/slurmctld.pid /run/slurmd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then rm -f "$pidfile"; fi
done

mkdir -p /run/munge
chown munge:munge /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "munged"
    for _ in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.2
    done
    munge -n | unmunge >/dev/null || die "munged did not start"
fi

if [ -f /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; then
    scontrol reconfigure
else
    slurmctld
fi
if ! { [ -f /run/slurmd.pid ] && kill -0 "$(cat /run/slurmd.pid)" 2>/dev/null; }; then
    slurmd
fi

deadline=$((SECONDS + START_TIMEOUT))
until [ "$(sinfo -h -o %T 2>/dev/null | head -n1)" = "idle" ]; do
    if [ $SECONDS -ge $deadline ]; then
        sinfo >&2 || true
        tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
        die "node did not become idle within ${START_TIMEOUT}s"
    fi
    sleep 0.5
done
echo "SLURM up: node ${NODE}, ${CPUS} CPUs, ${MEM} MB, partition debug, completion log ${JOBCOMP_LOG}"
