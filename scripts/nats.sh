#!/usr/bin/env bash
# Starts (or stops) a local NATS server with JetStream for the faas-queue-nats tests and
# `faas up --queue nats://127.0.0.1:4222`.
#
#   scripts/nats.sh start    install nats-server if missing (Debian package), start it on
#                            127.0.0.1:4222 with JetStream and its data in $NATS_DATA_DIR, wait until
#                            JetStream answers, print its PID. Idempotent: a running server is reused.
#   scripts/nats.sh stop     stop the server this script started (by its PID file).
#   scripts/nats.sh status   print the PID and exit 0 when it runs, exit 1 otherwise.
#
# Exits non-zero with a clear message when NATS cannot be started (CI fails rather than skips).
set -euo pipefail

NATS_PORT="${NATS_PORT:-4222}"
NATS_MONITOR_PORT="${NATS_MONITOR_PORT:-8222}"
NATS_DATA_DIR="${NATS_DATA_DIR:-/var/tmp/faas-rs-nats}"
PIDFILE="$NATS_DATA_DIR/nats-server.pid"
LOGFILE="$NATS_DATA_DIR/nats-server.log"
WAIT_SECS="${NATS_WAIT_SECS:-30}"

die() { echo "nats.sh: error: $*" >&2; exit 1; }
log() { echo "nats.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

running_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

jetstream_ready() {
    curl -fsS "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null 2>&1
}

start() {
    if ! command -v nats-server >/dev/null 2>&1; then
        log "nats-server not found, installing it from apt"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null \
            || die "apt-get install nats-server failed"
    fi
    command -v nats-server >/dev/null 2>&1 || die "nats-server is still missing after install"
    command -v curl >/dev/null 2>&1 || die "curl is needed to check the server (scripts/install-deps.sh)"
    mkdir -p "$NATS_DATA_DIR/jetstream"

    local pid
    if pid="$(running_pid)"; then
        log "nats-server already running"
    else
        rm -f "$PIDFILE"
        log "starting nats-server -js on 127.0.0.1:$NATS_PORT (data: $NATS_DATA_DIR, log: $LOGFILE)"
        # setsid: the server outlives this script and its process group.
        setsid nohup nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" \
            -sd "$NATS_DATA_DIR/jetstream" -P "$PIDFILE" >>"$LOGFILE" 2>&1 </dev/null &
    fi
    local deadline=$((SECONDS + WAIT_SECS))
    until jetstream_ready; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$LOGFILE" >&2 2>/dev/null || true
            die "JetStream did not become ready on 127.0.0.1:$NATS_PORT within ${WAIT_SECS}s"
        fi
        sleep 0.2
    done
    pid="$(running_pid)" || die "nats-server answers but its PID file $PIDFILE is missing"
    log "JetStream ready on nats://127.0.0.1:$NATS_PORT"
    echo "$pid"
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "nats-server $pid did not stop, killing it"
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$PIDFILE"
        log "stopped nats-server $pid"
    else
        log "no nats-server started by this script is running"
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) running_pid || exit 1 ;;
    *) die "usage: $0 [start|stop|status]" ;;
esac
