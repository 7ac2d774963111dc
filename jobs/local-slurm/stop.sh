#!/usr/bin/env bash
# Stop the single-node SLURM started by start.sh: cancel every job, then stop slurmd, slurmctld
# and munged by their PID files (never by process name). Idempotent.
# SLURM_WIPE_STATE=1 also deletes the controller state (job ids restart at 1) and the logs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

stop_daemon() {  # PIDFILE COMM: TERM, wait up to 30 s, then KILL
    local pid
    if alive "$1" "$2"; then
        pid=$(cat "$1")
        log "stopping $2 (pid $pid)"
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 300); do alive "$1" "$2" || break; sleep 0.1; done
        alive "$1" "$2" && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$1"
}

step_daemons() {
    local p c
    for p in /proc/[0-9]*; do
        read -r c 2>/dev/null <"$p/comm" && [ "$c" = slurmstepd ] && echo "${p#/proc/}"
    done
    return 0
}

if alive /run/slurmctld.pid slurmctld; then
    jobs=$(squeue -h -o %i 2>/dev/null)
    if [ -n "$jobs" ]; then
        log "cancelling jobs: $(echo $jobs)"
        echo "$jobs" | xargs -r scancel
        for _ in $(seq 300); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
    fi
fi
for _ in $(seq 150); do [ -z "$(step_daemons)" ] && break; sleep 0.1; done
stop_daemon /run/slurmd.pid slurmd
stop_daemon /run/slurmctld.pid slurmctld
stop_daemon /run/munge/munged.pid munged
if [ "${SLURM_WIPE_STATE:-0}" = 1 ]; then
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* /var/log/slurm/*.log
fi
log "stopped"
