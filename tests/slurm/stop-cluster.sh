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
echo "SLURM stopped"
