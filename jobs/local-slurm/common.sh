# Helpers shared by start.sh and stop.sh (sourced, not run).

log() { echo "[local-slurm] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# alive PIDFILE COMM: the pid in PIDFILE is a running process named COMM. A zombie counts as
# stopped: without systemd, PID 1 may take seconds to reap a daemon that has exited.
alive() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}

show_logs() {
    local f
    for f in /var/log/munge/munged.log /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do
        [ -f "$f" ] && { log "---- last lines of $f"; tail -n 25 "$f" >&2; }
    done
    return 0
}
