#!/usr/bin/env bash
# A throwaway RabbitMQ node for tests, run as a plain background process (no systemd, no
# service): its own data, logs, node name, ports, epmd and Erlang cookie under one temp dir.
#
#   eval "$(tests/servers/rabbitmq.sh start)"   # prints: export RABBITMQ_URL=amqp://...
#   tests/servers/rabbitmq.sh stop
#
# `start` on a node that is already up prints its URL again; `stop` without a node is a no-op.
# Needs the Debian package: apt-get install -y rabbitmq-server
set -euo pipefail

STATE_DIR="${RABBITMQ_TEST_DIR:-${TMPDIR:-/tmp}/contoso-orders-rabbitmq-$(id -u)}"
# The Debian wrappers in /usr/sbin switch to the rabbitmq user and its /var/lib data; call
# the real scripts so the node runs as whoever runs this, with the paths set below.
RMQ_BIN="${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}"

log() { echo "rabbitmq.sh: $*" >&2; }

require_installed() {
    if [[ ! -x "$RMQ_BIN/rabbitmq-server" ]] || ! command -v erl >/dev/null; then
        log "RabbitMQ is not installed (no $RMQ_BIN/rabbitmq-server or no erl)."
        log "install it with: apt-get install -y rabbitmq-server"
        exit 1
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Every variable the server and the CLI tools read; the CLI needs the same cookie (HOME),
# epmd port and node name to reach the node.
node_env() {
    # shellcheck disable=SC1091
    source "$STATE_DIR/ports"
    export HOME="$STATE_DIR/home"
    export ERL_EPMD_PORT="$EPMD_PORT"
    export RABBITMQ_NODENAME="test-$AMQP_PORT@localhost"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$AMQP_PORT"
    export RABBITMQ_DIST_PORT="$DIST_PORT"
    export RABBITMQ_CTL_DIST_PORT_MIN="$CTL_PORT"
    export RABBITMQ_CTL_DIST_PORT_MAX="$((CTL_PORT + 10 > 65535 ? 65535 : CTL_PORT + 10))"
    export RABBITMQ_MNESIA_BASE="$STATE_DIR/mnesia"
    export RABBITMQ_LOG_BASE="$STATE_DIR/log"
    export RABBITMQ_PID_FILE="$STATE_DIR/rabbitmq.pid"
    export RABBITMQ_CONF_ENV_FILE="$STATE_DIR/rabbitmq-env.conf"
    export RABBITMQ_CONFIG_FILE="$STATE_DIR/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$STATE_DIR/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$STATE_DIR/enabled_plugins"
    # No scheduler busy-waiting: on a small machine shared with the apps under test, spinning
    # Erlang schedulers take CPU the apps need (RabbitMQ's runtime tuning guide: +sbwt none).
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
}

# A user of its own with a random password, so a test can tell whether the credentials of
# RABBITMQ_URL ever reach a log (guest:guest would not stand out).
url() { echo "export RABBITMQ_URL=amqp://orders:$(cat "$STATE_DIR/password")@127.0.0.1:$AMQP_PORT/%2f"; }

add_user() {
    python3 -c 'import secrets; print("amqp-" + secrets.token_hex(12), end="")' >"$STATE_DIR/password"
    "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q add_user orders "$(cat "$STATE_DIR/password")" >&2
    "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q set_permissions -p / orders '.*' '.*' '.*' >&2
}

accepts_amqp() { (exec 3<>"/dev/tcp/127.0.0.1/$AMQP_PORT") 2>/dev/null; }

server_alive() { [[ -f "$STATE_DIR/server.pid" ]] && kill -0 "$(cat "$STATE_DIR/server.pid")" 2>/dev/null; }

start() {
    require_installed
    if [[ -f "$STATE_DIR/ports" ]]; then
        node_env
        if server_alive && accepts_amqp; then
            log "already running ($RABBITMQ_NODENAME)"
            url
            return
        fi
        stop >/dev/null
    fi

    rm -rf "$STATE_DIR"
    mkdir -p "$STATE_DIR/home" "$STATE_DIR/mnesia" "$STATE_DIR/log"
    chmod 700 "$STATE_DIR"
    cat >"$STATE_DIR/ports" <<EOF
AMQP_PORT=$(free_port)
DIST_PORT=$(free_port)
EPMD_PORT=$(free_port)
CTL_PORT=$(free_port)
EOF
    node_env
    python3 -c 'import secrets; print(secrets.token_hex(20), end="")' >"$HOME/.erlang.cookie"
    chmod 400 "$HOME/.erlang.cookie"
    : >"$RABBITMQ_CONF_ENV_FILE"
    echo '[].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
    echo '[].' >"$RABBITMQ_ADVANCED_CONFIG_FILE"
    # guest may log in over loopback only (the default, stated for the reader).
    cat >"$RABBITMQ_CONFIG_FILE" <<'EOF'
loopback_users.guest = true
log.console = false
log.file.level = info
EOF

    # setsid: the node outlives this script and is not hit by the caller's Ctrl-C.
    setsid "$RMQ_BIN/rabbitmq-server" >"$STATE_DIR/log/server.out" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/server.pid"

    for _ in $(seq 1 240); do
        if ! server_alive; then
            log "rabbitmq-server exited during start-up; its output:"
            tail -n 40 "$STATE_DIR/log/server.out" >&2 || true
            exit 1
        fi
        if accepts_amqp; then
            # The listener opens late in boot; await_startup confirms the node is fully up.
            "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q await_startup --timeout 60 >&2
            add_user
            log "started $RABBITMQ_NODENAME (pid $(cat "$STATE_DIR/server.pid"), dir $STATE_DIR)"
            url
            return
        fi
        sleep 0.5
    done
    log "no AMQP listener on port $AMQP_PORT after 120 s; see $STATE_DIR/log"
    stop >/dev/null || true
    exit 1
}

stop() {
    if [[ ! -f "$STATE_DIR/ports" ]]; then
        log "not running"
        return
    fi
    node_env
    if server_alive; then
        "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q stop >&2 2>/dev/null || true
        local pid
        pid="$(cat "$STATE_DIR/server.pid")"
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            sleep 1
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # The node started its own epmd on a private port; nothing else uses it.
    epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
    rm -rf "$STATE_DIR"
    log "stopped"
}

# Stops and starts the broker application on the running node (ports, users and durable queues
# kept): every client connection is closed, as in a broker restart (the soak's fault).
restart() {
    node_env
    "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q stop_app >&2
    "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q start_app >&2
    "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q await_startup --timeout 60 >&2
    log "restarted $RABBITMQ_NODENAME"
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
