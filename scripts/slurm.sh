#!/usr/bin/env bash
# A real one-node Slurm cluster for mlrun's slurm tests, on a machine where none runs (root).
#
#   bash scripts/slurm.sh start    # installs slurm-wlm and munge if missing, starts munged,
#                                  # slurmctld and slurmd; reuses a cluster it already started
#   bash scripts/slurm.sh stop     # stops the daemons it started, by their pids
#
# One node (this machine's short hostname, CPUs and memory), one partition `debug`, no
# accounting (so no sacct: mlrun falls back to scontrol). State, logs and the munge socket
# live under $MLRUN_SLURM_STATE (default /var/lib/mlrun-slurm); nothing else on the machine is
# touched. Each state folder is a cluster of its own: its controller and node daemon take free
# ports when it is first configured, so several clusters (parallel test runs, a developer's
# own) run side by side on one machine. `start` prints the SLURM_CONF that reaches it.
set -euo pipefail

STATE=${MLRUN_SLURM_STATE:-/var/lib/mlrun-slurm}
CONF="$STATE/slurm.conf"
export SLURM_CONF="$CONF"

log() { echo "slurm: $*" >&2; }

running() { [ -f "$CONF" ] && sinfo -h >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

free_ports() {
    # Two ports nothing listens on now, held together so that they differ.
    python3 - <<'PY'
import socket
held = [socket.socket() for _ in range(2)]
for probe in held:
    probe.bind(("", 0))
print(" ".join(str(probe.getsockname()[1]) for probe in held))
PY
}

write_conf() {
    local host cpus mem ctld_port slurmd_port
    host=$(hostname -s)
    read -r ctld_port slurmd_port < <(free_ports)
    cpus=$(nproc)
    mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512))
    mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/munge" "$STATE/log"
    cat >"$CONF" <<EOF
ClusterName=mlrun
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CryptoType=crypto/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
OverTimeLimit=0
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_daemons() {
    if [ ! -f "$STATE/munge/munge.key" ]; then
        dd if=/dev/urandom bs=1 count=1024 of="$STATE/munge/munge.key" 2>/dev/null
        chmod 400 "$STATE/munge/munge.key"
    fi
    chmod 700 "$STATE/munge"
    log "starting munged, slurmctld and slurmd (state in $STATE)"
    munged --force --key-file "$STATE/munge/munge.key" --socket "$STATE/munge/munge.socket" \
        --pid-file "$STATE/munge/munged.pid" --log-file "$STATE/log/munged.log" \
        --seed-file "$STATE/munge/munge.seed"
    slurmctld -f "$CONF" -c -i >/dev/null 2>&1 </dev/null
    slurmd -f "$CONF" -c >/dev/null 2>&1 </dev/null
    for _ in $(seq 1 100); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            return 0
        fi
        sleep 0.2
    done
    log "the cluster did not come up; the controller's log:"
    tail -20 "$STATE/log/slurmctld.log" >&2
    exit 1
}

stop_pidfiles() {
    # Signals every daemon named first and then waits for them together: each takes a second
    # or two to exit.
    local file pids=()
    for file in "$@"; do
        [ -f "$file" ] || continue
        pids+=("$(cat "$file")")
        kill "${pids[-1]}" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    rm -f "$@"
}

case "${1:-}" in
    start)
        install_packages
        if ! running; then
            write_conf
            start_daemons
        fi
        echo "export SLURM_CONF=$CONF"
        ;;
    stop)
        stop_pidfiles "$STATE/slurmd.pid" "$STATE/slurmctld.pid"
        stop_pidfiles "$STATE/munge/munged.pid"  # last: the daemons authenticate through it
        ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
