#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis against the OpenAPI document the handler serves
# (functions/openapi.json, compiled in). CI runs this after the workspace is built:
#
#   cargo build -p orders-functions --bin handler && tests/schemathesis/run.sh
#
# Starts target/debug/handler in dev mode on a free port with a throwaway data directory and a
# random signing key, gets a token from POST /dev/token, runs schemathesis with the checks
# below, and exits non-zero if it finds anything. The handler is always stopped.
#
# Environment (all optional):
#   SCHEMATHESIS_VENV          venv to (re)use            [.local/schemathesis-venv]
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation   [100]
#   SCHEMATHESIS_WORKERS       concurrent workers         [2]
#   SCHEMATHESIS_SEED          fixed seed to reproduce a run
#   SCHEMATHESIS_TIMEOUT       hard cap on the run, secs  [600]
#   SCHEMATHESIS_REPORT_DIR    JUnit report directory     [.local/schemathesis-report]
#   SCHEMATHESIS_SCHEMA_FILE   fuzz this document file instead of the served one (to iterate on
#                              the document without rebuilding; CI leaves it unset)
#   HANDLER_BIN                the handler binary         [target/debug/handler]
#   PYTHON                     interpreter for the venv   [python3]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

HERE="tests/schemathesis"
PYTHON="${PYTHON:-python3}"
VENV="${SCHEMATHESIS_VENV:-.local/schemathesis-venv}"
HANDLER="${HANDLER_BIN:-target/debug/handler}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
WORKERS="${SCHEMATHESIS_WORKERS:-2}"
RUN_TIMEOUT="${SCHEMATHESIS_TIMEOUT:-600}"
REPORT_DIR="${SCHEMATHESIS_REPORT_DIR:-.local/schemathesis-report}"
SCHEMA_FILE="${SCHEMATHESIS_SCHEMA_FILE:-}"
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

say() { printf '[schemathesis] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[[ -x "$HANDLER" ]] || die "$HANDLER not found or not executable; build it first: cargo build -p orders-functions --bin handler"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
[[ -z "$SCHEMA_FILE" || -f "$SCHEMA_FILE" ]] || die "SCHEMATHESIS_SCHEMA_FILE=$SCHEMA_FILE does not exist"

# --- schemathesis, pinned, in its own venv -----------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
SCHEMATHESIS="$VENV/bin/schemathesis"
say "$("$SCHEMATHESIS" --version)"

# --- the handler, dev mode, throwaway state ----------------------------------------------------
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
DATA_DIR="$(mktemp -d)"
HANDLER_LOG="$DATA_DIR/handler.log"
JWT_SIGNING_KEY="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(36))')"   # 48 chars
BASE="http://127.0.0.1:$PORT"
HANDLER_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$HANDLER_PID" ]] && kill -0 "$HANDLER_PID" 2>/dev/null; then
        kill -TERM "$HANDLER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$HANDLER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$HANDLER_PID" 2>/dev/null || true
        wait "$HANDLER_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -f "$HANDLER_LOG" ]]; then
        say "last handler log lines:"
        tail -n 40 "$HANDLER_LOG" >&2 || true
    fi
    rm -rf "$DATA_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A clean environment: nothing from the caller's shell (FUNCTIONS_CUSTOMHANDLER_PORT, AUTH_MODE,
# SQL_PROVIDER, ...) can change what is fuzzed.
env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_LOG="${RUST_LOG:-warn}" \
    HOST=127.0.0.1 PORT="$PORT" DATA_DIR="$DATA_DIR" \
    AUTH_MODE=dev JWT_SIGNING_KEY="$JWT_SIGNING_KEY" SQL_PROVIDER=sqlite \
    "$HANDLER" >"$HANDLER_LOG" 2>&1 &
HANDLER_PID=$!
say "handler pid $HANDLER_PID on $BASE (data $DATA_DIR)"

# Small HTTP helper (no curl dependency): http GET|POST URL [JSON]; prints the body, fails on non-2xx.
http() {
    "$PYTHON" - "$@" <<'PY'
import sys, urllib.request
method, url = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=data, method=method)
if data is not None:
    req.add_header("Content-Type", "application/json")
with urllib.request.urlopen(req, timeout=5) as res:
    sys.stdout.write(res.read().decode())
PY
}

for i in $(seq 300); do
    kill -0 "$HANDLER_PID" 2>/dev/null || die "the handler exited during start-up"
    if http GET "$BASE/api/health/live" >/dev/null 2>&1; then break; fi
    [[ $i -lt 300 ]] || die "the handler did not answer $BASE/api/health/live within 30 s"
    sleep 0.1
done

TOKEN="$(http POST "$BASE/dev/token" '{"userId":"fuzzer"}' \
    | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')" \
    || die "POST /dev/token did not return a token"
[[ -n "$TOKEN" ]] || die "POST /dev/token returned an empty token"

# --- which document --------------------------------------------------------------------------
if [[ -n "$SCHEMA_FILE" ]]; then
    say "fuzzing against $SCHEMA_FILE (not the served document)"
    TARGET=("$SCHEMA_FILE" --url "$BASE/")
else
    # The served document is compiled in: refuse a handler built from another version of it.
    http GET "$BASE/api/openapi.json" | "$PYTHON" -c '
import json, sys
served = json.load(sys.stdin)
with open("functions/openapi.json") as f:
    source = json.load(f)
sys.exit(0 if served == source else 1)' \
        || die "$HANDLER serves a different openapi.json than functions/openapi.json; rebuild it"
    TARGET=("$BASE/api/openapi.json")
fi

# --- fuzz ----------------------------------------------------------------------------------------
mkdir -p "$REPORT_DIR"
ARGS=(
    run "${TARGET[@]}"
    --checks "$CHECKS"
    --header "Authorization: Bearer $TOKEN"
    --max-examples "$MAX_EXAMPLES"
    --workers "$WORKERS"
    --request-timeout 10
    --generation-database none
    --report junit --report-dir "$REPORT_DIR"
)
[[ -z "${SCHEMATHESIS_SEED:-}" ]] || ARGS+=(--seed "$SCHEMATHESIS_SEED")

say "schemathesis ${ARGS[*]//$TOKEN/<token>}"
started=$SECONDS
rc=0
if command -v timeout >/dev/null; then
    timeout --kill-after=10 "$RUN_TIMEOUT" "$SCHEMATHESIS" "${ARGS[@]}" || rc=$?
else
    "$SCHEMATHESIS" "${ARGS[@]}" || rc=$?
fi
say "finished in $((SECONDS - started)) s with exit code $rc (JUnit report in $REPORT_DIR)"
kill -0 "$HANDLER_PID" 2>/dev/null || { say "the handler died during the run"; [[ $rc -ne 0 ]] || rc=1; }
[[ $rc -ne 124 ]] || say "the run hit the ${RUN_TIMEOUT} s cap"
exit "$rc"
