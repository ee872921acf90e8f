#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/start-cluster.sh: slurmd, slurmctld and munged,
# each by its PID file, waiting until it is gone; then remove the PID files they leave behind.
set -uo pipefail

stop_by_pidfile() {
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile"
}

stop_by_pidfile /run/slurmd.pid
stop_by_pidfile /run/slurmctld.pid
stop_by_pidfile /run/munge/munged.pid
# Take the test cluster's configuration away too: with it in place and no controller running, every
# SLURM client call (the executor plugin asks `scontrol show config` whenever Snakemake starts)
# waits seconds for a controller that is gone.  start-cluster.sh writes it again.
conf=${SLURM_CONF:-/etc/slurm/slurm.conf}
if [ -f "$conf" ] && head -1 "$conf" | grep -q "Written by tests/slurm/start-cluster.sh"; then
    rm -f "$conf"
fi
echo "SLURM stopped"
