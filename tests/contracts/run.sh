#!/usr/bin/env bash
# Contract tests that need no Azure, Docker or cargo: the configuration contract between the Rust
# binaries and every file that configures them, host.json/function.json/docker-compose.yml against
# their published JSON schemas (stored in schemas/), the packaged app's layout, and static checks
# of the Bicep templates. Exits non-zero on any failure.
#
# Environment (optional):
#   CONTRACTS_VENV  venv to (re)use                        [.local/venv-contracts]
#   HANDLER_BIN     handler binary the packaging test packs [target/debug/handler, else target/release/handler]
#   PYTHON          interpreter for the venv               [python3]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="${CONTRACTS_VENV:-.local/venv-contracts}"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[contracts] creating venv $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/contracts/requirements.txt

exec "$VENV/bin/python" tests/contracts/run_all.py
