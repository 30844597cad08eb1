#!/usr/bin/env bash
# Start a local Docker Engine with a single-node Swarm for faas-rs tests.
#
# Idempotent: installs docker.io from Debian if dockerd is missing, removes a stale
# pid file, starts dockerd in the background (log: $DOCKERD_LOG), waits for it and
# runs `docker swarm init` unless this engine already is a swarm manager. When qemu-user-static is
# installed (scripts/install-deps.sh), registers it with binfmt_misc so that arm64/armv7 images
# (a Raspberry Pi cluster's) run here under emulation; the registration does not survive a restart.
# Exits non-zero with a clear message when Docker cannot be started.
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
PIDFILE="${DOCKER_PIDFILE:-/var/run/docker.pid}"
WAIT_SECS="${DOCKER_WAIT_SECS:-120}"

die() { echo "docker.sh: error: $*" >&2; exit 1; }
log() { echo "docker.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# 1. install dockerd when missing
if ! command -v dockerd >/dev/null 2>&1; then
    log "dockerd not found, installing docker.io from apt"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null \
        || die "apt-get install docker.io failed"
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd is still missing after install"
command -v docker >/dev/null 2>&1 || die "docker CLI is missing"

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# 2. start dockerd unless an engine already answers
if ! engine_up; then
    if pgrep -x dockerd >/dev/null 2>&1; then
        log "dockerd is running but not answering yet, waiting"
    else
        if [ -f "$PIDFILE" ]; then
            log "removing stale $PIDFILE"
            as_root rm -f "$PIDFILE"
        fi
        # containerd leaves its own pid file behind too
        as_root rm -f /var/run/docker/containerd/containerd.pid 2>/dev/null || true
        log "starting dockerd (log: $DOCKERD_LOG)"
        as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
        # setsid: the daemon outlives this script and its process group
        as_root setsid nohup dockerd --pidfile "$PIDFILE" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    deadline=$((SECONDS + WAIT_SECS))
    until engine_up; do
        if [ $SECONDS -ge $deadline ]; then
            tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
            die "docker engine did not answer within ${WAIT_SECS}s (see $DOCKERD_LOG)"
        fi
        if ! pgrep -x dockerd >/dev/null 2>&1; then
            tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
            die "dockerd exited while starting (see $DOCKERD_LOG)"
        fi
        sleep 1
    done
fi
log "engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

# 3. single-node swarm
state="$(docker info --format '{{.Swarm.LocalNodeState}}/{{.Swarm.ControlAvailable}}' 2>/dev/null || true)"
case "$state" in
    active/true) log "swarm already active, this node is a manager" ;;
    active/*) die "this node is in a swarm but is not a manager" ;;
    *)
        log "initialising swarm"
        docker swarm init --advertise-addr 127.0.0.1 >/dev/null \
            || die "docker swarm init failed"
        ;;
esac
state="$(docker info --format '{{.Swarm.LocalNodeState}}/{{.Swarm.ControlAvailable}}' 2>/dev/null || true)"
[ "$state" = "active/true" ] || die "swarm is not active (state: $state)"
log "ready: swarm manager on $(docker info --format '{{.Name}}')"

# 4. foreign-architecture images under qemu (binfmt_misc is per boot)
if [ -x /usr/bin/qemu-aarch64-static ]; then
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
            || die "cannot mount binfmt_misc (needed to run arm64/armv7 images under qemu)"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || [ ! -e /proc/sys/fs/binfmt_misc/qemu-arm ]; then
        as_root update-binfmts --enable >/dev/null 2>&1 || true
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && [ -e /proc/sys/fs/binfmt_misc/qemu-arm ] \
        || die "qemu-user-static is installed but not registered with binfmt_misc (update-binfmts --enable)"
    log "arm64 and armv7 images run under qemu-user-static"
fi
