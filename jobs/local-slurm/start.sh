#!/usr/bin/env bash
# Start a single-node SLURM (munged + slurmctld + slurmd, no systemd) on this Debian machine,
# for hpcseg's tests and for trying its SLURM and PBS modes on one machine. Run as root.
# Idempotent: installs what is missing, (re)writes slurm.conf only when it changes, starts only
# the daemons that are not running, and returns once the node accepts jobs.
#
# Environment (all optional):
#   SLURM_PARTITION       partition name                                   (debug)
#   SLURM_START_TIMEOUT   seconds to wait for the node                     (60)
#   SLURM_FAKE_GPUS       0|1|2 fake GPUs as GRES, so --gres=gpu:N jobs run (0)
#   SLURM_TORQUE_SHIM     1 = also install qsub/qstat/qdel (slurm-wlm-torque) (1)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

PARTITION=${SLURM_PARTITION:-debug}
TIMEOUT=${SLURM_START_TIMEOUT:-60}
FAKE_GPUS=${SLURM_FAKE_GPUS:-0}
TORQUE_SHIM=${SLURM_TORQUE_SHIM:-1}
CONF=/etc/slurm/slurm.conf

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts daemons)"

# 1. packages (no recommends: the test cluster needs 9 small packages, not 43)
need=()
command -v slurmctld >/dev/null && command -v slurmd >/dev/null || need+=(slurm-wlm)
command -v munged >/dev/null || need+=(munge)
[ "$TORQUE_SHIM" = 1 ] && ! command -v qsub >/dev/null && need+=(slurm-wlm-torque)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. everything over loopback, so SLURM works even where the host name does not resolve
HOST=$(hostname -s)
ADDR=127.0.0.1
getent hosts "$HOST" >/dev/null || echo "$ADDR $HOST" >>/etc/hosts

# 3. slurm.conf from this machine's hardware as slurmd sees it
hw=$(slurmd -C | head -n 1)
field() { tr ' ' '\n' <<<"$hw" | sed -n "s/^$1=//p"; }
CPUS=$(field CPUs); MEM=$(field RealMemory)
[ -n "$CPUS" ] && [ -n "$MEM" ] || die "cannot parse 'slurmd -C': $hw"
case "$FAKE_GPUS" in
    0) GRES_LINE="# no GRES"; NODE_GRES="" ;;
    1|2) GRES_LINE="GresTypes=gpu"; NODE_GRES=" Gres=gpu:$FAKE_GPUS" ;;
    *) die "SLURM_FAKE_GPUS must be 0, 1 or 2" ;;
esac
new=$(mktemp)
cat >"$new" <<CONF
# single-node test cluster written by hpcseg jobs/local-slurm/start.sh
ClusterName=hpcseg
SlurmctldHost=$HOST($ADDR)
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
# reject impossible requests at submission instead of leaving them pending for ever
EnforcePartLimits=ALL
SlurmUser=slurm
SlurmdUser=root
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$GRES_LINE
SchedulerType=sched/backfill
# start jobs at once (the default waits 3 s)
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$HOST NodeAddr=$ADDR/")$NODE_GRES State=UNKNOWN
# a job without --mem gets RAM/CPUs per CPU, not the whole node
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$((MEM / CPUS))
CONF
changed=0
if ! cmp -s "$new" "$CONF"; then
    install -D -m 0644 "$new" "$CONF"
    changed=1
    log "wrote $CONF"
fi
rm -f "$new"
rm -f /etc/slurm/gres.conf
if [ "$FAKE_GPUS" != 0 ]; then   # one device file per fake GPU
    echo "NodeName=$HOST Name=gpu File=/dev/null" >/etc/slurm/gres.conf
    [ "$FAKE_GPUS" = 2 ] && echo "NodeName=$HOST Name=gpu File=/dev/zero" >>/etc/slurm/gres.conf
fi

# 4. directories the packages do not create (no systemd RuntimeDirectory here)
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /etc/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm
install -d -m 0755 /var/spool/slurmd

# 5. munged runs as the munge user and insists on a private key
[ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 0600 /etc/munge/munge.key
alive /run/munge/munged.pid munged || { log "starting munged"; runuser -u munge -- /usr/sbin/munged; }
for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null 2>&1 || { show_logs; die "munge does not work"; }

# 6. slurmctld, then slurmd (both daemonize and write their PID files)
if [ "$changed" = 1 ]; then
    for d in slurmd slurmctld; do
        if alive /run/$d.pid $d; then
            log "configuration changed: restarting $d"
            kill "$(cat /run/$d.pid)"
            for _ in $(seq 300); do alive /run/$d.pid $d || break; sleep 0.1; done
        fi
        rm -f /run/$d.pid
    done
fi
deadline=$((SECONDS + TIMEOUT))
if ! alive /run/slurmctld.pid slurmctld; then
    log "starting slurmctld"
    rm -f /run/slurmctld.pid
    /usr/sbin/slurmctld
fi
until timeout 5 scontrol ping >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { show_logs; die "slurmctld does not answer 'scontrol ping'"; }
    sleep 0.2
done
if ! alive /run/slurmd.pid slurmd; then
    log "starting slurmd"
    rm -f /run/slurmd.pid
    /usr/sbin/slurmd
fi

# 7. wait until the node takes jobs (resume it if an earlier run left it drained)
while :; do
    state=$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null || true)
    case "$state" in
        idle|mixed|allocated|completing) break ;;
        drain*|down*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    [ $SECONDS -lt $deadline ] || { show_logs; die "node $HOST not ready (state '$state')"; }
    sleep 0.3
done
log "ready: node $HOST ($CPUS CPUs, $MEM MB) is $state in partition $PARTITION"
