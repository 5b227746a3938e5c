#!/usr/bin/env bash
# A real Docker engine for mlrun's docker tests, on a machine where none runs (root needed).
#
#   eval "$(bash scripts/docker-engine.sh start)"   # installs, starts, builds base images;
#                                                   # prints `export DOCKER_HOST=...`
#   bash scripts/docker-engine.sh stop              # stops the daemon it started, by its pid
#
# Base images are made offline: `mlrun-test/busybox` from busybox-static (2 MB), and
# `python:3.11-slim` from a debootstrap'ed Debian with python3, pip and this machine's CA
# certificates (HTTPS from containers goes through a TLS-intercepting proxy here), so that
# ordinary Dockerfiles build. One daemon per machine: a second one would delete the first's
# bridge, so `start` reuses a running one.
set -euo pipefail

STATE=${MLRUN_DOCKER_STATE:-/var/lib/mlrun-docker}
SOCK="$STATE/docker.sock"
export DOCKER_HOST="unix://$SOCK"

log() { echo "docker-engine: $*" >&2; }

running() { [ -S "$SOCK" ] && docker version >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    [ -x /bin/busybox ] || missing+=(busybox-static)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

start_daemon() {
    mkdir -p "$STATE/data" "$STATE/exec"
    log "starting dockerd (state in $STATE)"
    setsid dockerd --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$STATE/docker.pid" \
        -H "$DOCKER_HOST" >"$STATE/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 100); do
        running && return 0
        sleep 0.2
    done
    log "dockerd did not come up; its log:"
    tail -20 "$STATE/dockerd.log" >&2
    exit 1
}

busybox_image() {
    docker image inspect mlrun-test/busybox >/dev/null 2>&1 && return 0
    log "building mlrun-test/busybox"
    local root
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp" "$root/etc"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    chmod 1777 "$root/tmp"
    echo "root:x:0:0:root:/tmp:/bin/sh" >"$root/etc/passwd"
    tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' - mlrun-test/busybox >/dev/null
    rm -rf "$root"
}

python_image() {
    docker image inspect python:3.11-slim >/dev/null 2>&1 && return 0
    log "building python:3.11-slim with debootstrap (about a minute)"
    local root="$STATE/rootfs-python"
    rm -rf "$root"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
        bookworm "$root" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 || {
        tail -20 "$STATE/debootstrap.log" >&2
        exit 1
    }
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$root" update-ca-certificates >/dev/null 2>&1
    rm -rf "$root/var/cache/apt/archives"/*.deb
    tar -C "$root" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' -c 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
        - python:3.11-slim >/dev/null
    rm -rf "$root"
}

case "${1:-}" in
    start)
        install_packages
        running || start_daemon
        busybox_image
        python_image
        echo "export DOCKER_HOST=$DOCKER_HOST"
        ;;
    stop)
        if [ -f "$STATE/docker.pid" ]; then
            pid=$(cat "$STATE/docker.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            rm -f "$STATE/docker.pid"
        fi
        ;;
    *)
        echo "usage: $0 start|stop" >&2
        exit 2
        ;;
esac
