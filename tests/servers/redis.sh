#!/usr/bin/env bash
# A throwaway Redis for tests, run as a plain background process (no systemd, no service):
# a free loopback port, no persistence, its pid file and log under one temp dir.
#
#   eval "$(tests/servers/redis.sh start)"   # prints: export REDIS_URL=redis://127.0.0.1:PORT
#   tests/servers/redis.sh stop
#
# `start` on a server that is already up prints its URL again; `stop` without a server is a
# no-op. Needs the Debian package: apt-get install -y redis-server
set -euo pipefail

STATE_DIR="${REDIS_TEST_DIR:-${TMPDIR:-/tmp}/contoso-orders-redis-$(id -u)}"

log() { echo "redis.sh: $*" >&2; }

require_installed() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        log "Redis is not installed (no redis-server or redis-cli on PATH)."
        log "install it with: apt-get install -y redis-server"
        exit 1
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url() { echo "export REDIS_URL=redis://127.0.0.1:$PORT"; }

answers_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" == PONG ]]; }

server_alive() { [[ -f "$STATE_DIR/redis.pid" ]] && kill -0 "$(cat "$STATE_DIR/redis.pid")" 2>/dev/null; }

start() {
    require_installed
    if [[ -f "$STATE_DIR/port" ]]; then
        PORT="$(cat "$STATE_DIR/port")"
        if server_alive && answers_ping; then
            log "already running on port $PORT"
            url
            return
        fi
        stop >/dev/null
    fi

    rm -rf "$STATE_DIR"
    mkdir -p "$STATE_DIR"
    chmod 700 "$STATE_DIR"
    PORT="$(free_port)"
    echo "$PORT" >"$STATE_DIR/port"
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$STATE_DIR/redis.pid" --dir "$STATE_DIR" \
        --logfile "$STATE_DIR/redis.log"

    for _ in $(seq 1 100); do
        if answers_ping; then
            log "started on port $PORT (pid $(cat "$STATE_DIR/redis.pid"), dir $STATE_DIR)"
            url
            return
        fi
        sleep 0.1
    done
    log "redis-server did not answer PING on port $PORT within 10 s; its log:"
    tail -n 20 "$STATE_DIR/redis.log" >&2 || true
    stop >/dev/null || true
    exit 1
}

stop() {
    if [[ ! -f "$STATE_DIR/redis.pid" ]]; then
        log "not running"
        rm -rf "$STATE_DIR"
        return
    fi
    local pid
    pid="$(cat "$STATE_DIR/redis.pid")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    fi
    rm -rf "$STATE_DIR"
    log "stopped"
}

# The same server again, on the same port: clients see a crash and a restart (the soak's fault).
restart() {
    PORT="$(cat "$STATE_DIR/port")"
    kill -9 "$(cat "$STATE_DIR/redis.pid")" 2>/dev/null || true
    while answers_ping; do sleep 0.05; done
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$STATE_DIR/redis.pid" --dir "$STATE_DIR" \
        --logfile "$STATE_DIR/redis.log"
    for _ in $(seq 1 100); do
        answers_ping && { log "restarted on port $PORT"; return; }
        sleep 0.1
    done
    log "redis-server did not come back on port $PORT"
    exit 1
}

case "${1:-}" in
    start) start ;;
    restart) restart ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop|restart" >&2
        exit 2
        ;;
esac
