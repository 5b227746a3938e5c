#!/usr/bin/env bash
# A real PostgreSQL for mlrun's database-store tests, in a throw-away cluster (root needed).
#
#   eval "$(bash scripts/postgres.sh start)"   # installs if missing, initialises a cluster in a
#                                              # temp dir, starts it on a free loopback port;
#                                              # prints `export MLRUN_TEST_POSTGRES_URI=...` and
#                                              # `export MLRUN_POSTGRES_DIR=...`
#   bash scripts/postgres.sh stop DIR          # stops that cluster by its pid, removes DIR
#
# Authentication is `trust` for user postgres on 127.0.0.1 only; nothing else listens.
set -euo pipefail

log() { echo "postgres: $*" >&2; }

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

install_packages() {
    bindir >/dev/null && return 0
    log "installing postgresql"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    install_packages
    local bin dir port
    bin=$(bindir)
    dir=$(mktemp -d /tmp/mlrun-postgres.XXXXXX)
    chown postgres "$dir"
    port=$(free_port)
    runuser -u postgres -- "$bin/initdb" -A trust -U postgres -D "$dir/data" >"$dir/initdb.log" 2>&1 || {
        log "initdb failed:"; tail -20 "$dir/initdb.log" >&2; exit 1; }
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >&2 || {
        log "the server did not start:"; tail -20 "$dir/server.log" >&2; exit 1; }
    log "running on 127.0.0.1:$port (data in $dir/data, pid $(head -1 "$dir/data/postmaster.pid"))"
    echo "export MLRUN_TEST_POSTGRES_URI=postgresql://postgres@127.0.0.1:$port/postgres"
    echo "export MLRUN_POSTGRES_DIR=$dir"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    local pid
    [ -f "$dir/data/postmaster.pid" ] || { log "nothing running in $dir"; return 0; }
    pid=$(head -1 "$dir/data/postmaster.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    case "$dir" in /tmp/mlrun-postgres.*) rm -rf "$dir" ;; esac
    log "stopped pid $pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
